# What `import board` means to pyright when the firmware is checked with the Pico board
# (pyrightconfig.rp2.json): the deploy step copies boards/pico.py to the board as board.py.
from pico import *
from pico import NAME as NAME, Board as Board
