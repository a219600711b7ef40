"""The board's log on the host: decoding segments, the MAC chain, littlefs images."""
