# isolog's ESP32-S3 build: ports/esp32/boards/ESP32_GENERIC_S3/mpconfigboard.cmake, and this
# board's sdkconfig.board (a faster wake from deep sleep).
include(boards/mpconfigboard_esp32s3_common.cmake)

list(APPEND SDKCONFIG_DEFAULTS
    boards/sdkconfig.flash_qio_80m
    boards/sdkconfig.csi
    ${MICROPY_BOARD_DIR}/sdkconfig.board
)
