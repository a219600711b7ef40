"""The generic ESP32-S3 build's stdout path, for the virtual board's "esp32s3-generic" profile
(boards/profiles.py names the sources).

mp_hal_stdout_tx_strn (ports/esp32/mphalport.c) writes every stdout byte to the UART REPL before
USB CDC. uart_stdout_tx_strn (ports/esp32/uart.c) puts what fits into the UART's TX FIFO and,
while bytes are left, waits one FreeRTOS tick (ulTaskNotifyTake(pdFALSE, 1)); the FIFO drains at
the baud rate, 10 bits a byte (8N1). The board is blocked all that time: it passes on the board's
clock (and counts against the watchdog), and in real time at the simulation's speed. Integers
only: the simulation must not take the firmware's heap.
"""

import time


class UartRepl:
    def __init__(self, board, params):
        self.board = board
        self.baud, fifo_bytes, self.tick_us = params
        self.fifo_bits = fifo_bytes * 10
        self.bits = 0  # bits still in the TX FIFO at board time at_us
        self.at_us = 0
        self.carry_us = 0  # board time spent waiting, not yet whole milliseconds
        self.blocked_us = 0

    def write(self, n):
        b = self.board
        baud = self.baud
        now_us = b.uptime_ms * 1000 + self.carry_us
        level = self.bits - (now_us - self.at_us) * baud // 1_000_000
        if level < 0:
            level = 0
        bits = n * 10
        blocked = 0
        while True:
            put = self.fifo_bits - level
            if put > bits:
                put = bits
            level += put
            bits -= put
            if not bits:
                break
            blocked += self.tick_us  # one tick, while the FIFO is full
            level -= self.tick_us * baud // 1_000_000
            if level < 0:
                level = 0
        if blocked:
            self.blocked_us += blocked
            if b.speed > 0:
                time.sleep_us(int(blocked / b.speed))
            carry = self.carry_us + blocked
            b.uptime_ms += carry // 1000
            self.carry_us = carry % 1000
            b._check_watchdog()
        self.bits = level
        self.at_us = b.uptime_ms * 1000 + self.carry_us
