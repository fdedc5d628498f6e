package h1

import "errors"

// errChunked is a chunked body that breaks RFC 9112 §7.1: a bad size line
// (not hex, too long, "0x", blanks, a bare LF), a missing CRLF after the data, a
// malformed extension or trailer, or one that never ends within the bounds.
var errChunked = errors.New("malformed chunked body")

// Bounds of the parts of a chunked body that are not data.
const (
	maxChunkLine    = 4096  // a size line with its extensions
	maxTrailerBytes = 16384 // the whole trailer section
)

// chunked follows a chunked body as it streams by, so that the bytes can be
// relayed as they came while the proxy knows where the body ends and refuses
// one that is malformed. The zero value is ready for a new body.
type chunked struct {
	state   chunkState
	size    int64 // of the current chunk; while in chunkData, what is left of it
	digits  int
	line    int // bytes of the current size or trailer line
	trailer int // bytes of the trailer section
}

type chunkState uint8

const (
	chunkSize         chunkState = iota // hex digits of a size
	chunkExt                            // after ';': an extension name must start
	chunkExtName                        // in the name
	chunkExtValue                       // after '=': a token or a quoted string must start
	chunkExtToken                       // in a token value
	chunkExtQuoted                      // in a quoted value
	chunkExtQuotedEsc                   // after a backslash in a quoted value
	chunkExtNext                        // after a quoted value: ';' or CR
	chunkSizeLF                         // CR seen at the end of a size line
	chunkData
	chunkDataCR
	chunkDataLF
	chunkTrailerStart // at the start of a trailer line (or the final CRLF)
	chunkTrailerName
	chunkTrailerValue
	chunkTrailerLF
	chunkEndLF
	chunkDone
)

// scan consumes p, the next bytes of the body. It returns how many bytes
// belong to the body (all of p unless the body ends inside it) and whether
// the body ended there.
func (c *chunked) scan(p []byte) (n int, done bool, err error) {
	for n < len(p) {
		b := p[n]
		switch c.state {
		case chunkData:
			k := int64(len(p) - n)
			if k > c.size {
				k = c.size
			}
			n += int(k)
			c.size -= k
			if c.size == 0 {
				c.state = chunkDataCR
			}
			continue
		case chunkSize:
			v := hexValue(b)
			switch {
			case v >= 0:
				if c.digits == 15 { // 16 hex digits may overflow int64: refuse
					return n, false, errChunked
				}
				c.size = c.size<<4 | int64(v)
				c.digits++
			case b == ';' && c.digits > 0:
				c.state = chunkExt
			case b == '\r' && c.digits > 0:
				c.state = chunkSizeLF
			default:
				return n, false, errChunked
			}
		case chunkExt: // right after ';': the name's first character
			if !tokenChar[b] {
				return n, false, errChunked
			}
			c.state = chunkExtName
		case chunkExtName:
			switch {
			case tokenChar[b]:
			case b == '=':
				c.state = chunkExtValue
			case b == ';':
				c.state = chunkExt
			case b == '\r':
				c.state = chunkSizeLF
			default:
				return n, false, errChunked
			}
		case chunkExtValue: // right after '=': a token or a quoted string
			switch {
			case b == '"':
				c.state = chunkExtQuoted
			case tokenChar[b]:
				c.state = chunkExtToken
			default:
				return n, false, errChunked
			}
		case chunkExtToken:
			switch {
			case tokenChar[b]:
			case b == ';':
				c.state = chunkExt
			case b == '\r':
				c.state = chunkSizeLF
			default:
				return n, false, errChunked
			}
		case chunkExtQuoted:
			switch {
			case b == '"':
				c.state = chunkExtNext
			case b == '\\':
				c.state = chunkExtQuotedEsc
			case b == '\t' || (b >= 0x20 && b != 0x7f):
			default:
				return n, false, errChunked
			}
		case chunkExtQuotedEsc:
			if b != '\t' && (b < 0x20 || b == 0x7f) {
				return n, false, errChunked
			}
			c.state = chunkExtQuoted
		case chunkExtNext: // after a quoted value
			switch b {
			case ';':
				c.state = chunkExt
			case '\r':
				c.state = chunkSizeLF
			default:
				return n, false, errChunked
			}
		case chunkSizeLF:
			if b != '\n' {
				return n, false, errChunked
			}
			c.line, c.digits = 0, 0
			if c.size == 0 {
				c.state = chunkTrailerStart
			} else {
				c.state = chunkData
			}
			n++
			continue
		case chunkDataCR:
			if b != '\r' {
				return n, false, errChunked
			}
			c.state = chunkDataLF
		case chunkDataLF:
			if b != '\n' {
				return n, false, errChunked
			}
			c.state, c.size, c.line = chunkSize, 0, 0
			n++
			continue
		case chunkTrailerStart:
			switch {
			case b == '\r':
				c.state = chunkEndLF
			case tokenChar[b]:
				c.state = chunkTrailerName
			default:
				return n, false, errChunked
			}
		case chunkTrailerName:
			switch {
			case tokenChar[b]:
			case b == ':':
				c.state = chunkTrailerValue
			default:
				return n, false, errChunked
			}
		case chunkTrailerValue:
			switch {
			case b == '\r':
				c.state = chunkTrailerLF
			case valueChar[b]:
			default:
				return n, false, errChunked
			}
		case chunkTrailerLF:
			if b != '\n' {
				return n, false, errChunked
			}
			c.state, c.line = chunkTrailerStart, 0
			n++
			c.trailer++
			continue
		case chunkEndLF:
			if b != '\n' {
				return n, false, errChunked
			}
			c.state = chunkDone
			return n + 1, true, nil
		case chunkDone:
			return n, true, nil
		}
		n++
		c.line++
		if c.state >= chunkTrailerStart {
			c.trailer++
			if c.trailer > maxTrailerBytes {
				return n, false, errChunked
			}
		} else if c.line > maxChunkLine {
			return n, false, errChunked
		}
	}
	return n, c.state == chunkDone, nil
}

func hexValue(b byte) int {
	switch {
	case '0' <= b && b <= '9':
		return int(b - '0')
	case 'a' <= b && b <= 'f':
		return int(b-'a') + 10
	case 'A' <= b && b <= 'F':
		return int(b-'A') + 10
	}
	return -1
}
