/*
 * ernl.h - edgernn serial link protocol, firmware side (portable C99, no malloc).
 *
 * The same wire format as firmware_bridge/protocol.py, described byte by byte in
 * docs/protocol.md. A frame on the wire is
 *
 *     0x00  COBS( header[10] payload[n] crc32[4] )  0x00
 *
 * header (little-endian): version u8 (=1), kind u8, stream_id u8, encoding u8,
 * seq u16, timestamp_us u32. crc32 is CRC-32/ISO-HDLC (zlib's crc32) of header
 * and payload, stored little-endian. n <= ERNL_MAX_PAYLOAD.
 *
 * Sending (e.g. one IMU sample):
 *
 *     uint8_t wire[ERNL_MAX_WIRE];
 *     size_t len = ernl_encode_f32(ERNL_SAMPLE, 0, seq++, micros(), values, 6,
 *                                  wire, sizeof wire);
 *     if (len) uart_write(wire, len);
 *
 * Receiving, one byte at a time (from a UART interrupt or a poll loop):
 *
 *     static ernl_decoder dec;  static ernl_frame frame;
 *     ernl_decoder_init(&dec);
 *     ...
 *     if (ernl_decoder_push(&dec, byte, &frame)) handle(&frame);
 *
 * Memory: ernl_decoder holds one bounded chunk buffer (ERNL_MAX_ENCODED bytes)
 * and counters; ernl_frame holds ERNL_MAX_PAYLOAD bytes. Nothing is allocated;
 * ernl_encode and ernl_encode_f32 use ERNL_MAX_RAW bytes of stack. A device may
 * define a smaller ERNL_MAX_PAYLOAD (e.g. -DERNL_MAX_PAYLOAD=64) to save RAM:
 * it then rejects longer frames as "payload"/"oversize", as the protocol allows.
 * Every function is reentrant for distinct objects; the library keeps no globals.
 * Floats are IEEE-754 binary32 (checked at compile time); byte order is explicit,
 * so the code is correct on little- and big-endian CPUs.
 */
#ifndef ERNL_H
#define ERNL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ERNL_VERSION 1
#define ERNL_HEADER_SIZE 10
#define ERNL_CRC_SIZE 4
#ifndef ERNL_MAX_PAYLOAD
#define ERNL_MAX_PAYLOAD 1024 /* must equal protocol.MAX_PAYLOAD on the host */
#endif
#define ERNL_MAX_RAW (ERNL_HEADER_SIZE + ERNL_MAX_PAYLOAD + ERNL_CRC_SIZE)
/* Longest COBS encoding of a valid frame, without delimiters. */
#define ERNL_MAX_ENCODED (ERNL_MAX_RAW + (ERNL_MAX_RAW + 253) / 254)
/* Longest frame on the wire, with both delimiters: size of a send buffer. */
#define ERNL_MAX_WIRE (ERNL_MAX_ENCODED + 2)

enum ernl_kind {
    ERNL_SAMPLE = 1, ERNL_RESULT = 2, ERNL_CONTROL = 3,
    ERNL_ACK = 4, ERNL_ERROR = 5, ERNL_HEARTBEAT = 6
};
enum ernl_encoding { ERNL_RAW = 0, ERNL_F32 = 1, ERNL_I16 = 2 };
/* payload[0] of a CONTROL frame (and of its ACK) */
enum ernl_control {
    ERNL_RESET_STREAM = 1, ERNL_PING = 2, ERNL_INFO = 3, ERNL_SET_RATE = 4
};
/* Why the decoder rejected a chunk: indexes of ernl_decoder.rejected, in the
 * order of protocol.REJECT_REASONS. ernl_parse returns ERNL_OK or one of these. */
enum ernl_reject {
    ERNL_REJECT_OVERSIZE = 0, ERNL_REJECT_FRAMING, ERNL_REJECT_SHORT, ERNL_REJECT_CRC,
    ERNL_REJECT_VERSION, ERNL_REJECT_KIND, ERNL_REJECT_ENCODING, ERNL_REJECT_PAYLOAD,
    ERNL_REJECT_COUNT
};
#define ERNL_OK (-1)

typedef struct {
    uint8_t version;
    uint8_t kind;        /* enum ernl_kind */
    uint8_t stream_id;
    uint8_t encoding;    /* enum ernl_encoding */
    uint16_t seq;
    uint32_t timestamp;  /* device microseconds */
    uint16_t payload_len;
    uint8_t payload[ERNL_MAX_PAYLOAD];
} ernl_frame;

typedef struct {
    uint8_t buf[ERNL_MAX_ENCODED]; /* current chunk, de-stuffed in place */
    uint16_t len;
    uint8_t discarding;            /* 1 after an oversize chunk, until 0x00 */
    uint32_t frames;               /* valid frames returned */
    uint32_t rejected[ERNL_REJECT_COUNT];
} ernl_decoder;

/* CRC-32/ISO-HDLC, zlib convention: ernl_crc32(0, p, n); chainable. */
uint32_t ernl_crc32(uint32_t crc, const uint8_t *data, size_t len);

/* COBS-encode len bytes into out (no delimiters). Returns the encoded length,
 * or 0 if cap is too small (need len + len/254 + 1). */
size_t ernl_cobs_encode(const uint8_t *in, size_t len, uint8_t *out, size_t cap);

/* COBS-decode; out may equal in (in-place). Returns the decoded length, or -1
 * on a 0x00 in the input, a block running past the end, or cap too small. */
long ernl_cobs_decode(const uint8_t *in, size_t len, uint8_t *out, size_t cap);

/* Encode a frame to wire bytes (both delimiters). f->version is written as is.
 * Returns the wire length, or 0 if payload_len > ERNL_MAX_PAYLOAD or cap is too
 * small (ERNL_MAX_WIRE always suffices). */
size_t ernl_encode(const ernl_frame *f, uint8_t *out, size_t cap);

/* Encode a frame with an F32 payload of n floats without building an ernl_frame.
 * Returns the wire length, or 0 if n > ERNL_MAX_PAYLOAD / 4 or cap is too small. */
size_t ernl_encode_f32(uint8_t kind, uint8_t stream_id, uint16_t seq, uint32_t timestamp,
                       const float *values, size_t n, uint8_t *out, size_t cap);

/* Parse a de-stuffed chunk into *f. Returns ERNL_OK or an enum ernl_reject. */
int ernl_parse(const uint8_t *raw, size_t len, ernl_frame *f);

/* Values of an F32 or I16 payload as floats (I16: q * scale). Returns how many
 * were written (at most cap), or 0 for a RAW payload. */
size_t ernl_values(const ernl_frame *f, float *out, size_t cap);

void ernl_decoder_init(ernl_decoder *d);

/* Feed one received byte. Returns 1 when it completed a valid frame, now in *out;
 * 0 otherwise. Never fails: invalid chunks are counted in d->rejected and
 * decoding resumes after the next 0x00. */
int ernl_decoder_push(ernl_decoder *d, uint8_t byte, ernl_frame *out);

#ifdef __cplusplus
}
#endif
#endif /* ERNL_H */
