// isolog's ESP32-S3 build: MicroPython's ESP32_GENERIC_S3 without the UART REPL.
//
// The generic build sets MICROPY_HW_ENABLE_UART_REPL to 1 ("for modules that have an external
// USB-UART"), and mp_hal_stdout_tx_strn (ports/esp32/mphalport.c) then writes every stdout byte to
// UART0 at 115200 baud, blocking, before it reaches native USB: the sync link would move about
// 11 KB/s. isolog uses native USB only; with the UART REPL off, stdout goes to USB CDC alone
// (ports/esp32/uart.h: the default is !MICROPY_HW_USB_CDC, i.e. off on the S3).
#define MICROPY_HW_BOARD_NAME               "isolog ESP32-S3 (USB REPL only)"
#define MICROPY_HW_MCU_NAME                 "ESP32-S3"

#define MICROPY_HW_ENABLE_UART_REPL         (0)

#define MICROPY_HW_I2C0_SCL                 (9)
#define MICROPY_HW_I2C0_SDA                 (8)
