// isolog: the ESP32-S3's ULP-FSM program that counts the GM tube's pulses while the CPU sleeps,
// and plays the LED pattern then.
//
// Assembled for the S3 by tools/ulp/build.py (micropython-esp32-ulp 1.2.0 with the S3 encodings of
// tools/ulp/opcodes_s3.py) into boards/esp32s3_ulp.py, which boards/esp32s3.py loads at power-on;
// run by the interpreter in tests/boards/test_esp32s3_ulp.py. Sources: docs/references.md#esp32-s3-ulp.
//
// What it does: counts falling edges of GPIO6 (RTC_GPIO6: on the S3 RTC GPIO n is GPIO n for
// n = 0..21, ESP-IDF soc/esp32s3/include/soc/rtc_io_channel.h) into a 32-bit count kept as two
// 16-bit words in RTC slow memory, count_lo and count_hi (the ULP reads and writes the low 16 bits
// of a word). It applies the pulse-width window both boards promise (boards/README.md): a low is
// counted after FILTER samples in a row read low, and the counter re-arms after FILTER samples read
// high. Each sample takes SAMPLE_CYCLES = 26 ULP cycles on every path (the paths are padded to the
// same length; the state is in the program counter: an idle loop per level, a loop counting the
// FILTER samples of each edge), 1.486 us at the S3's 17.5 MHz RTC_FAST_CLK, so with FILTER = 8:
//   a low of 7 * 1.486 = 10.4 us or less is never counted, one of 8 * 1.486 = 11.9 us or more
//   always is (after a high as long); the window of boards/README.md is 10 / 12 us. A high under
//   10 us inside a pulse never re-arms the counter (unchanged by the LED player: measured on the
//   interpreter before and after it, 10.4 / 11.9 us). Exceptions, measured on the interpreter at
//   every phase (tests/boards/test_esp32s3_ulp.py): 66 cycles from the counting sample to the next
//   (58 before the LED correction below; 26 a sample), so right after a counted pulse the high that surely
//   re-arms is 13.6 us (13.3 before the LED player), 17.6 us after a carry (once in 65,536
//   counts); at an LED tick (once in 6,729 samples, every 10 ms) two samples are 3.89 us apart,
//   and a low that starts there is always counted from 14.5 us; at an LED step change (once a
//   step: at most every 100 ms with firmware/leds.py's patterns) 9.26 us apart, from 20.0 us. A
//   tube's highs last at least its dead time (190 us for an SBM-20) and its pulses after the
//   transistor stage tens of us (boards/README.md), so no tube pulse is lost to these; a pulse
//   train at the tube's maximum rate through ticks and step changes is counted whole (tested).
//
// LEDs (issue 13: a latched alarm or fault keeps its pattern through the sleep): the CPU writes
// up to 4 steps into led_table (ticks | green << 14 | red << 15, a word of 0 ends the table;
// boards/esp32s3.py, leds()). In the two idle loops (the line steady) r1 counts samples down from
// tick_loops; at 0 a tick (the branch taken once in 6,729 samples) counts led_left down, and when a
// step ends takes the next (after the last, the first), writes green and red into RTC_GPIO_OUT
// (RTC_GPIO15 and 16, bits 25 and 26: ESP-IDF soc/esp32s3/include/soc/rtc_io_reg.h) and reloads
// led_left. A tick is 26 * 6,729 + 42 = 174,996 cycles, 10.000 ms at 17.5 MHz nominal; the
// interpreter plays "logging" (100 / 9,900 ms) as 100.00 / 9,899.8 ms. The samples of a pulse's
// edges are not in the idle loops: a counted pulse takes pulse_loops = 18 samples off r1 at once
// (16 edge samples and the count's 40 cycles; a tick due meanwhile comes at the next idle
// sample), so the steps keep time at any rate (99.8 / 199.5 ms for 100 / 200 ms at the tube's
// maximum rate, tested). The RC oscillator's tolerance [R] moves the steps with it, as it moves
// the window. The ULP writes the RTC GPIO output awake and asleep alike; the pads show it only
// while the CPU deep-sleeps (boards/esp32s3.py hands them to the RTC IO mux in deepsleep() and
// back to the digital GPIO at every start). The polling is the same: the ULP's current is too
// (boards/energy.py).
// Cycle counts per instruction: ESP-IDF "ULP Coprocessor Instruction Set" (execute + fetch of the
// next instruction): REG_RD 4+4, ALU 2+4, JUMP and JUMPR 2+2, LD and ST 4+4, REG_WR 8+4.
// The RC oscillator's frequency is not trimmed here [R: its tolerance, a few %]: the window moves
// with it in proportion.
//
// Carry: count_lo wraps from 0xFFFF to 0; the ULP then writes count_lo = 0 and count_hi + 1 between
// two increments of seq (odd while it writes: a sequence lock). The CPU reads seq, count_hi,
// count_lo, seq again, and reads again unless seq was even and did not change (boards/esp32s3.py,
// _ulp_try): no torn value at any interleaving (a test tries every one; a flag set and cleared
// around the carry is not enough: the CPU can read it clear before and after). A count without a
// carry is one 16-bit store of count_lo, whole either way. count_hi wraps too: the count is modulo 2**32, and the board
// reports it masked to 30 bits, as every board does (2**32 is a multiple of 2**30).
//
// Design choice, continuous polling (the current is the price): the ULP never halts. With the CPU
// in deep sleep it draws what a powered-on ULP draws, 220 uA [R: the ESP32-S2's datasheet figure,
// the S3's own not read; boards/energy.py coprocessor_ua]. The alternative, the ULP woken by its
// timer every P (it draws in proportion to its duty, the S2's datasheet quotes 7 uA at 1 %), cannot
// see a 10 us pulse unless a pulse stretcher (a monostable) holds each pulse low for W >= P; two
// pulses then merge unless they are W + P apart. With P = 1 ms (W = 1.2 ms) that is a dead time of
// ~2.2 ms in place of the tube's 190 us: at the tube's maximum rate (a pulse every 190 us) it counts
// one pulse in 12 (92 % lost), at 10,000 cpm 27 % are lost, and the firmware's dead-time correction
// (firmware/counting.py, the tube's own dead time) would be wrong. Continuous polling loses none
// (the tests run trains at the maximum rate) and keeps the 10 us noise window.

#define DR_REG_RTCIO_BASE               0x60008400
#define DR_REG_SENS_BASE                0x60008800
#define RTC_GPIO_OUT_REG                (DR_REG_RTCIO_BASE + 0x0)
#define RTC_GPIO_IN_REG                 (DR_REG_RTCIO_BASE + 0x24)
#define RTC_IO_TOUCH_PAD6_REG           (DR_REG_RTCIO_BASE + 0x9c)
#define SENS_SAR_PERI_CLK_GATE_CONF_REG (DR_REG_SENS_BASE + 0x104)

        .set gm_in_bit, 16      // RTC_GPIO_IN_NEXT starts at bit 10; RTC_GPIO6 is bit 10 + 6
        .set filter, 8          // samples in a row that make a level (see above)
        .set filter_rest, 7     // filter - 1: the samples after the first of a level
        .set led_green_bit, 25  // RTC_GPIO_OUT_DATA starts at bit 10: RTC_GPIO15 (GPIO15, green)
        .set led_red_bit, 26    // RTC_GPIO16 (GPIO16, red), next to it: one REG_WR sets both
        .set tick_loops, 6729   // samples per LED tick: 26 * 6729 + 42 = 174,996 cycles = 10.0 ms
        .set pulse_loops, 18    // samples a counted pulse spends outside the idle loops (see above)

        .text
count_lo:   .long 0             // word 0: low 16 bits of the count
count_hi:   .long 0             // word 1: high 16 bits
seq:        .long 0             // word 2: odd while a carry is being written
led_left:   .long 0             // word 3: LED ticks left in the current step, after this one
led_ptr:    .long 4             // word 4: word address of the current step (led_table - 1: none)
led_table:  .long 0             // words 5..8: steps, ticks | green << 14 | red << 15; 0 ends
            .long 0
            .long 0
            .long 0
led_end:    .long 0             // word 9: always 0, so a table of 4 steps ends too

entry:
        // The RTC IO MUX clock, then GPIO6 to the RTC mux with its input enabled (the pad's
        // MUX_SEL bit 19 and FUN_IE bit 13; the 10 k pull-up is on the board, boards/README.md).
        // The LED pads are the CPU's (boards/esp32s3.py hands them over at a deep sleep).
        reg_wr SENS_SAR_PERI_CLK_GATE_CONF_REG, 31, 31, 1
        reg_wr RTC_IO_TOUCH_PAD6_REG, 19, 19, 1
        reg_wr RTC_IO_TOUCH_PAD6_REG, 13, 13, 1
        move r3, count_lo       // r3: base of the words (in words)
        move r1, tick_loops     // r1: idle samples until the next LED tick
        // Start inside a pulse: the line must read high FILTER times before a low can count.

// The line reads low and a pulse was counted: wait for its first high. r1 counts samples here.
pulse_idle:
        reg_rd RTC_GPIO_IN_REG, gm_in_bit, gm_in_bit
        jumpr pulse_high1, 0, gt // r0 > 0: a high
        sub r1, r1, 1
        jump tick_p, eq         // an LED tick (once in tick_loops samples)
        jump pulse_idle         // 8 + 4 + 6 + 4 + 4 = 26 cycles
pulse_high1:
        move r2, filter_rest     // this high is the first of FILTER
        jump pulse_pad          // 8 + 4 + 6 + 4 + 4 = 26 cycles to the next sample
pulse_pad:
        jump pulse_cnt
pulse_cnt:                      // r2 more highs in a row re-arm the counter
        reg_rd RTC_GPIO_IN_REG, gm_in_bit, gm_in_bit
        jumpr pulse_again, 1, lt // r0 < 1: low again
        sub r2, r2, 1
        jump rearm, eq          // 8 + 4 + 6 + 4 + 4 (rearm) = 26 cycles
        jump pulse_cnt          // 26 cycles
pulse_again:
        sub r1, r1, 1
        jump tick_p, eq
        jump pulse_idle         // 26 cycles
rearm:
        jump armed_idle

// Armed, the line reads high: wait for a low. r1 counts samples here.
armed_idle:
        reg_rd RTC_GPIO_IN_REG, gm_in_bit, gm_in_bit
        jumpr armed_low1, 1, lt // r0 < 1: a low
        sub r1, r1, 1
        jump tick_a, eq
        jump armed_idle         // 26 cycles
armed_low1:
        move r2, filter_rest     // this low is the first of FILTER
        jump armed_pad
armed_pad:
        jump armed_cnt          // 26 cycles
armed_cnt:                      // r2 more lows in a row make a pulse
        reg_rd RTC_GPIO_IN_REG, gm_in_bit, gm_in_bit
        jumpr armed_again, 0, gt // r0 > 0: high again
        sub r2, r2, 1
        jump count, eq          // FILTER lows: a pulse
        jump armed_cnt          // 26 cycles
armed_again:
        sub r1, r1, 1
        jump tick_a, eq
        jump armed_idle         // 26 cycles

count:
        ld r0, r3, 0            // count_lo + 1
        add r0, r0, 1
        jump carry, eq          // wrapped to 0
        st r0, r3, 0
counted:
        // The samples of the pulse's edges did not count down r1: take them off at once, so the
        // LED ticks keep time at any rate (a tick due meanwhile comes at the next idle sample).
        sub r1, r1, pulse_loops
        jump tick_soon, ov
        jump tick_soon, eq
        jump pulse_idle
tick_soon:
        move r1, 1
        jump pulse_idle
carry:                          // r2 is free from here to the next edge
        ld r2, r3, 8
        add r2, r2, 1
        st r2, r3, 8            // seq + 1: odd
        st r0, r3, 0            // count_lo = 0
        ld r2, r3, 4
        add r2, r2, 1
        st r2, r3, 4            // count_hi + 1 (wraps at 0xFFFF: the count is modulo 2**32)
        ld r2, r3, 8
        add r2, r2, 1
        st r2, r3, 8            // seq + 1: even
        jump counted

// An LED tick, from an idle loop (the line steady): r2 is free there and holds the way back.
tick_p:
        move r2, pulse_idle
        jump tick
tick_a:
        move r2, armed_idle
        jump tick
tick:
        ld r0, r3, 12           // led_left - 1
        sub r0, r0, 1
        jump led_next, ov       // it was 0: the next step
        st r0, r3, 12
        move r1, tick_loops     // the tick's sample: 8 + 4 + 6 + 4, then 6 + 4 (tick_a or p)
        jump r2                 // + 8 + 6 + 4 + 8 + 6 + 4 = 68 cycles, 42 more than a sample
led_next:
        ld r1, r3, 16           // led_ptr + 1
        add r1, r1, 1
        ld r0, r1, 0
        jumpr led_step, 0, gt   // a step
        move r1, led_table      // 0: the end of the table, back to its start
        ld r0, r1, 0
        jumpr led_step, 0, gt
        move r1, led_ptr        // (led_table - 1) an empty table: the LEDs off, again at the next tick
led_step:
        st r1, r3, 16           // led_ptr
        and r1, r0, 0x3fff      // the step's ticks (0 for none), this one included
        sub r1, r1, 1
        jump led_none, ov
        st r1, r3, 12           // led_left
led_none:
        rsh r0, r0, 14          // green | red << 1
        move r1, tick_loops
        jumpr led_off, 1, lt
        jumpr led_g, 1, eq
        jumpr led_r, 2, eq
        reg_wr RTC_GPIO_OUT_REG, led_red_bit, led_green_bit, 3
        jump r2
led_off:
        reg_wr RTC_GPIO_OUT_REG, led_red_bit, led_green_bit, 0
        jump r2
led_g:
        reg_wr RTC_GPIO_OUT_REG, led_red_bit, led_green_bit, 1
        jump r2
led_r:
        reg_wr RTC_GPIO_OUT_REG, led_red_bit, led_green_bit, 2
        jump r2
