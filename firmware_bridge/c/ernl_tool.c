/*
 * ernl_tool.c - host-side driver of ernl.c, used by tests/test_firmware_c.py to
 * cross-check the C codec against the Python one. Not firmware (uses stdio).
 *
 *   ernl_tool crc                  stdin bytes -> "%08x\n" CRC-32
 *   ernl_tool cobs-encode          stdin bytes -> stdout COBS bytes
 *   ernl_tool cobs-decode          stdin COBS bytes -> stdout bytes (exit 1 if invalid)
 *   ernl_tool encode               lines "version kind stream seq ts enc hexpayload|-"
 *                                  -> stdout wire bytes, frames concatenated
 *   ernl_tool sample S SEQ TS V..  stdout wire bytes of ernl_encode_f32(SAMPLE, ...),
 *                                  values parsed with strtof (hex floats exact)
 *   ernl_tool decode               stdin wire bytes -> one line per frame
 *                                  "F kind stream seq ts enc hexpayload|- values...",
 *                                  values printed as %a; then "R r0 .. r7" and "N frames"
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ernl.h"

static uint8_t input[1 << 22];

static size_t read_all(void)
{
    size_t n = fread(input, 1, sizeof input, stdin);
    if (n == sizeof input) {
        fprintf(stderr, "ernl_tool: input larger than %zu bytes\n", sizeof input);
        exit(2);
    }
    return n;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int cmd_encode(void)
{
    static char line[4 * ERNL_MAX_PAYLOAD];
    static ernl_frame f;
    static uint8_t wire[ERNL_MAX_WIRE];
    char hex[2 * ERNL_MAX_PAYLOAD + 2];
    unsigned v, k, s, q, e;
    unsigned long ts;
    while (fgets(line, sizeof line, stdin)) {
        size_t i, n, len;
        if (sscanf(line, "%u %u %u %u %lu %u %2049s", &v, &k, &s, &q, &ts, &e, hex) != 7) {
            fprintf(stderr, "ernl_tool: bad encode line: %s", line);
            return 2;
        }
        n = strcmp(hex, "-") == 0 ? 0 : strlen(hex) / 2;
        if (n > ERNL_MAX_PAYLOAD) {
            fprintf(stderr, "ernl_tool: payload of %zu bytes > %d\n", n, ERNL_MAX_PAYLOAD);
            return 2;
        }
        for (i = 0; i < n; i++)
            f.payload[i] = (uint8_t)(hexval(hex[2 * i]) << 4 | hexval(hex[2 * i + 1]));
        f.version = (uint8_t)v; f.kind = (uint8_t)k; f.stream_id = (uint8_t)s;
        f.seq = (uint16_t)q; f.timestamp = (uint32_t)ts; f.encoding = (uint8_t)e;
        f.payload_len = (uint16_t)n;
        len = ernl_encode(&f, wire, sizeof wire);
        if (!len) {
            fprintf(stderr, "ernl_tool: ernl_encode failed\n");
            return 1;
        }
        fwrite(wire, 1, len, stdout);
    }
    return 0;
}

static int cmd_decode(void)
{
    static ernl_decoder d;
    static ernl_frame f;
    float values[ERNL_MAX_PAYLOAD / 2];
    size_t n = read_all(), i, j, k;
    ernl_decoder_init(&d);
    for (i = 0; i < n; i++) {
        if (!ernl_decoder_push(&d, input[i], &f))
            continue;
        printf("F %u %u %u %lu %u ", f.kind, f.stream_id, f.seq, (unsigned long)f.timestamp,
               f.encoding);
        if (!f.payload_len)
            printf("-");
        for (j = 0; j < f.payload_len; j++)
            printf("%02x", f.payload[j]);
        k = ernl_values(&f, values, sizeof values / sizeof values[0]);
        for (j = 0; j < k; j++)
            printf(" %a", (double)values[j]);
        printf("\n");
    }
    printf("R");
    for (i = 0; i < ERNL_REJECT_COUNT; i++)
        printf(" %lu", (unsigned long)d.rejected[i]);
    printf("\nN %lu\n", (unsigned long)d.frames);
    return 0;
}

int main(int argc, char **argv)
{
    static uint8_t out[(1 << 22) + (1 << 15)];
    const char *cmd = argc > 1 ? argv[1] : "";
    if (!strcmp(cmd, "crc")) {
        size_t n = read_all();
        printf("%08lx\n", (unsigned long)ernl_crc32(0, input, n));
        return 0;
    }
    if (!strcmp(cmd, "cobs-encode")) {
        size_t n = read_all();
        fwrite(out, 1, ernl_cobs_encode(input, n, out, sizeof out), stdout);
        return 0;
    }
    if (!strcmp(cmd, "cobs-decode")) {
        long n = ernl_cobs_decode(input, read_all(), out, sizeof out);
        if (n < 0)
            return 1;
        fwrite(out, 1, (size_t)n, stdout);
        return 0;
    }
    if (!strcmp(cmd, "encode"))
        return cmd_encode();
    if (!strcmp(cmd, "decode"))
        return cmd_decode();
    if (!strcmp(cmd, "sample") && argc >= 5) {
        float values[ERNL_MAX_PAYLOAD / 4 + 1];
        int i, nv = argc - 5;
        size_t len;
        if (nv > ERNL_MAX_PAYLOAD / 4 + 1)
            nv = ERNL_MAX_PAYLOAD / 4 + 1;
        for (i = 0; i < nv; i++)
            values[i] = strtof(argv[5 + i], NULL);
        len = ernl_encode_f32(ERNL_SAMPLE, (uint8_t)atoi(argv[2]), (uint16_t)atol(argv[3]),
                              (uint32_t)strtoul(argv[4], NULL, 10), values, (size_t)nv,
                              out, ERNL_MAX_WIRE);
        if (!len) {
            fprintf(stderr, "ernl_tool: ernl_encode_f32 refused %d values\n", nv);
            return 1;
        }
        fwrite(out, 1, len, stdout);
        return 0;
    }
    fprintf(stderr, "usage: ernl_tool crc|cobs-encode|cobs-decode|encode|decode|"
                    "sample S SEQ TS V...\n");
    return 2;
}
