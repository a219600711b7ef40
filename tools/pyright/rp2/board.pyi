# What `import board` means to pyright when the firmware is checked with the Pico board
# (pyrightconfig.rp2.json): the deploy step copies boards/pico.py to the board as board.py.
from pico import *  # noqa: F403 - a stub for board.py, which is pico.py under another name
from pico import NAME as NAME
from pico import Board as Board
