# isolog's ESP32-S3 build: the same as ports/esp32/boards/ESP32_GENERIC_S3/mpconfigboard.cmake.
include(boards/mpconfigboard_esp32s3_common.cmake)

list(APPEND SDKCONFIG_DEFAULTS
    boards/sdkconfig.flash_qio_80m
    boards/sdkconfig.csi
)
