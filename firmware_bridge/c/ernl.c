/* ernl.c - edgernn serial link protocol, firmware side. See ernl.h. */
#include "ernl.h"

#include <string.h>

typedef char ernl_float_is_binary32[(sizeof(float) == 4) ? 1 : -1];

static const uint32_t crc_nibble[16] = {
    0x00000000u, 0x1DB71064u, 0x3B6E20C8u, 0x26D930ACu,
    0x76DC4190u, 0x6B6B51F4u, 0x4DB26158u, 0x5005713Cu,
    0xEDB88320u, 0xF00F9344u, 0xD6D6A3E8u, 0xCB61B38Cu,
    0x9B64C2B0u, 0x86D3D2D4u, 0xA00AE278u, 0xBDBDF21Cu,
};

uint32_t ernl_crc32(uint32_t crc, const uint8_t *data, size_t len)
{
    crc = ~crc;
    while (len--) {
        crc ^= *data++;
        crc = (crc >> 4) ^ crc_nibble[crc & 15u];
        crc = (crc >> 4) ^ crc_nibble[crc & 15u];
    }
    return ~crc;
}

size_t ernl_cobs_encode(const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
    size_t code_at = 0, o = 1, i;
    uint8_t code = 1;
    if (cap < len + len / 254 + 1)
        return 0;
    for (i = 0; i < len; i++) {
        if (in[i]) {
            out[o++] = in[i];
            code++;
        }
        if (!in[i] || code == 0xFF) {
            out[code_at] = code;
            code = 1;
            code_at = o;
            if (!in[i] || i + 1 < len)
                o++;
        }
    }
    if (code_at < o)
        out[code_at] = code;
    return o;
}

long ernl_cobs_decode(const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
    size_t i = 0, o = 0;
    while (i < len) {
        uint8_t code = in[i];
        size_t end = i + code, j;
        if (code == 0 || end > len)
            return -1;
        for (j = i + 1; j < end; j++) {
            if (in[j] == 0 || o >= cap)
                return -1;
            out[o++] = in[j];
        }
        if (code != 0xFF && end < len) {
            if (o >= cap)
                return -1;
            out[o++] = 0;
        }
        i = end;
    }
    return (long)o;
}

static void put_u16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}
static uint16_t get_u16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

/* COBS-encode raw[0..n) (crc appended here) between delimiters. raw needs 4 spare bytes. */
static size_t finish(uint8_t *raw, size_t n, uint8_t *out, size_t cap)
{
    size_t enc;
    put_u32(raw + n, ernl_crc32(0, raw, n));
    n += ERNL_CRC_SIZE;
    if (cap < 2)
        return 0;
    enc = ernl_cobs_encode(raw, n, out + 1, cap - 2);
    if (!enc)
        return 0;
    out[0] = 0;
    out[enc + 1] = 0;
    return enc + 2;
}

static void put_header(uint8_t *raw, uint8_t version, uint8_t kind, uint8_t stream_id,
                       uint8_t encoding, uint16_t seq, uint32_t timestamp)
{
    raw[0] = version; raw[1] = kind; raw[2] = stream_id; raw[3] = encoding;
    put_u16(raw + 4, seq);
    put_u32(raw + 6, timestamp);
}

size_t ernl_encode(const ernl_frame *f, uint8_t *out, size_t cap)
{
    uint8_t raw[ERNL_MAX_RAW];
    if (f->payload_len > ERNL_MAX_PAYLOAD)
        return 0;
    put_header(raw, f->version, f->kind, f->stream_id, f->encoding, f->seq, f->timestamp);
    memcpy(raw + ERNL_HEADER_SIZE, f->payload, f->payload_len);
    return finish(raw, ERNL_HEADER_SIZE + (size_t)f->payload_len, out, cap);
}

size_t ernl_encode_f32(uint8_t kind, uint8_t stream_id, uint16_t seq, uint32_t timestamp,
                       const float *values, size_t n, uint8_t *out, size_t cap)
{
    uint8_t raw[ERNL_MAX_RAW];
    size_t i;
    if (n > ERNL_MAX_PAYLOAD / 4)
        return 0;
    put_header(raw, ERNL_VERSION, kind, stream_id, ERNL_F32, seq, timestamp);
    for (i = 0; i < n; i++) {
        uint32_t bits;
        memcpy(&bits, &values[i], 4);
        put_u32(raw + ERNL_HEADER_SIZE + 4 * i, bits);
    }
    return finish(raw, ERNL_HEADER_SIZE + 4 * n, out, cap);
}

int ernl_parse(const uint8_t *raw, size_t len, ernl_frame *f)
{
    size_t p;
    if (len < ERNL_HEADER_SIZE + ERNL_CRC_SIZE)
        return ERNL_REJECT_SHORT;
    p = len - ERNL_HEADER_SIZE - ERNL_CRC_SIZE;
    if (ernl_crc32(0, raw, len - ERNL_CRC_SIZE) != get_u32(raw + len - ERNL_CRC_SIZE))
        return ERNL_REJECT_CRC;
    if (raw[0] != ERNL_VERSION)
        return ERNL_REJECT_VERSION;
    if (raw[1] < ERNL_SAMPLE || raw[1] > ERNL_HEARTBEAT)
        return ERNL_REJECT_KIND;
    if (raw[3] > ERNL_I16)
        return ERNL_REJECT_ENCODING;
    if (p > ERNL_MAX_PAYLOAD || (raw[3] == ERNL_F32 && p % 4) ||
        (raw[3] == ERNL_I16 && (p < 4 || p % 2)))
        return ERNL_REJECT_PAYLOAD;
    f->version = raw[0];
    f->kind = raw[1];
    f->stream_id = raw[2];
    f->encoding = raw[3];
    f->seq = get_u16(raw + 4);
    f->timestamp = get_u32(raw + 6);
    f->payload_len = (uint16_t)p;
    memcpy(f->payload, raw + ERNL_HEADER_SIZE, p);
    return ERNL_OK;
}

size_t ernl_values(const ernl_frame *f, float *out, size_t cap)
{
    size_t i, n;
    uint32_t bits;
    float scale;
    if (f->encoding == ERNL_F32) {
        n = f->payload_len / 4;
        for (i = 0; i < n && i < cap; i++) {
            bits = get_u32(f->payload + 4 * i);
            memcpy(&out[i], &bits, 4);
        }
        return i;
    }
    if (f->encoding == ERNL_I16 && f->payload_len >= 4) {
        bits = get_u32(f->payload);
        memcpy(&scale, &bits, 4);
        n = (f->payload_len - 4u) / 2u;
        for (i = 0; i < n && i < cap; i++)
            out[i] = (float)(int16_t)get_u16(f->payload + 4 + 2 * i) * scale;
        return i;
    }
    return 0;
}

void ernl_decoder_init(ernl_decoder *d)
{
    memset(d, 0, sizeof *d);
}

int ernl_decoder_push(ernl_decoder *d, uint8_t byte, ernl_frame *out)
{
    long n;
    int why;
    if (byte != 0) {
        if (d->discarding)
            return 0;
        if (d->len >= ERNL_MAX_ENCODED) {
            d->rejected[ERNL_REJECT_OVERSIZE]++;
            d->len = 0;
            d->discarding = 1;
            return 0;
        }
        d->buf[d->len++] = byte;
        return 0;
    }
    if (d->discarding || d->len == 0) {
        d->discarding = 0;
        return 0;
    }
    n = ernl_cobs_decode(d->buf, d->len, d->buf, sizeof d->buf);
    d->len = 0;
    if (n < 0) {
        d->rejected[ERNL_REJECT_FRAMING]++;
        return 0;
    }
    why = ernl_parse(d->buf, (size_t)n, out);
    if (why != ERNL_OK) {
        d->rejected[why]++;
        return 0;
    }
    d->frames++;
    return 1;
}
