# What `import board` means to pyright when the firmware is checked with the ESP32-S3 board
# (pyrightconfig.esp32.json): the deploy step copies boards/esp32s3.py to the board as board.py.
from esp32s3 import *  # noqa: F403 - a stub for board.py, which is esp32s3.py under another name
from esp32s3 import NAME as NAME
from esp32s3 import Board as Board
