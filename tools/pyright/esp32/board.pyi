# What `import board` means to pyright when the firmware is checked with the ESP32-S3 board
# (pyrightconfig.esp32.json): the deploy step copies boards/esp32s3.py to the board as board.py.
from esp32s3 import *
from esp32s3 import NAME as NAME, Board as Board
