package store

import (
	"bytes"
	"crypto/cipher"
	"strings"
	"testing"
)

func testSealers(t *testing.T) (signed, sealed *sealer, keys Keys) {
	t.Helper()
	keys, err := DeriveKeys([]byte(testSecret))
	if err != nil {
		t.Fatal(err)
	}
	if signed, err = newSealer(kindSessionID, keys.Hash, nil); err != nil {
		t.Fatal(err)
	}
	if sealed, err = newSealer(kindPayload, keys.Hash, keys.Block); err != nil {
		t.Fatal(err)
	}
	return signed, sealed, keys
}

func TestSealOpensWhatItSealed(t *testing.T) {
	t.Parallel()
	signed, sealed, _ := testSealers(t)
	for _, s := range []*sealer{signed, sealed} {
		for _, data := range [][]byte{{}, []byte("0123456789abcdef"), bytes.Repeat([]byte{0xff}, 1000)} {
			v := s.seal("sid", data)
			got, ok := s.open("sid", v)
			if !ok || !bytes.Equal(got, data) {
				t.Errorf("kind %d, %d bytes: open(seal(x)) gave %x, %v; want x, true", s.kind, len(data), got, ok)
			}
			if strings.ContainsAny(v, "=+/;, \"") {
				t.Errorf("kind %d: value %q holds a character a cookie value must not (or that needs quoting)", s.kind, v)
			}
		}
	}
}

func TestSealedDataIsEncrypted(t *testing.T) {
	t.Parallel()
	_, sealed, _ := testSealers(t)
	data := []byte("page_views-page_views-page_views")
	a, b := sealed.seal("sid", data), sealed.seal("sid", data)
	if a == b {
		t.Errorf("the same data sealed twice gave the same value %q; want a fresh IV each time", a)
	}
	raw, _ := b64.DecodeString(a)
	if bytes.Contains(raw, data[:8]) {
		t.Errorf("the sealed value holds the plain data")
	}
}

func TestOpenRejects(t *testing.T) {
	t.Parallel()
	signed, sealed, keys := testSealers(t)
	otherKeys, _ := DeriveKeys([]byte(testSecret + "-other"))
	otherHash, _ := newSealer(kindPayload, otherKeys.Hash, keys.Block)
	good := sealed.seal("sid", []byte("payload"))
	raw, _ := b64.DecodeString(good)

	tests := []struct {
		name  string
		s     *sealer
		value string
	}{
		{"a value sealed for another cookie name", sealed, sealed.seal("other", []byte("payload"))},
		{"a value of another kind (a memory store id)", sealed, signed.seal("sid", make([]byte, 16+ivLen))},
		{"a value signed with another hash key (another secret)", otherHash, good},
		{"a truncated value", sealed, good[:len(good)-4]},
		{"the frame without its MAC", sealed, b64.EncodeToString(raw[:len(raw)-macLen])},
		{"a value with padding", sealed, good + "=="},
		{"standard base64", sealed, strings.NewReplacer("-", "+", "_", "/").Replace(good) + "+/"},
		{"an empty value", sealed, ""},
		{"garbage", sealed, "not-a-cookie"},
		{"a value past 4096 bytes", sealed, sealed.seal("sid", make([]byte, 3100))},
		{"an old securecookie value", sealed, "MTc5NTYzNDIzMHxsU0h2cTJST0pKZ1FGS0lLdXhhRTZ3PT187SItlgTicab-SFIgSgX78gSQqTuTFobgsyNcVwyrynQ="},
	}
	for _, tt := range tests {
		t.Run(tt.name+" does not open", func(t *testing.T) {
			if data, ok := tt.s.open("sid", tt.value); ok {
				t.Errorf("opened to %q", data)
			}
		})
	}
	t.Run("a value with any one byte changed does not open", func(t *testing.T) {
		for i := range raw {
			changed := bytes.Clone(raw)
			changed[i] ^= 0x01
			if _, ok := sealed.open("sid", b64.EncodeToString(changed)); ok {
				t.Fatalf("byte %d of %d changed: opened", i, len(raw))
			}
		}
	})
}

func TestCTRIsCipherNewCTR(t *testing.T) {
	t.Parallel()
	_, sealed, _ := testSealers(t)
	ivs := map[string][]byte{
		"a zero iv":                     make([]byte, ivLen),
		"an iv whose counter carries":   append(bytes.Repeat([]byte{0x01}, ivLen-2), 0xff, 0xfe),
		"an iv whose counter wraps":     bytes.Repeat([]byte{0xff}, ivLen),
		"an iv with a carry in the top": append([]byte{0x7f}, bytes.Repeat([]byte{0xff}, ivLen-1)...),
	}
	for name, iv := range ivs {
		t.Run(name+" gives cipher.NewCTR's output for every length", func(t *testing.T) {
			for n := range 100 {
				plain := make([]byte, n)
				for i := range plain {
					plain[i] = byte(i * 7)
				}
				want := make([]byte, n)
				cipher.NewCTR(sealed.block, iv).XORKeyStream(want, plain)
				got := bytes.Clone(plain)
				sealed.ctr(got, iv, make([]byte, ctrScratch))
				if !bytes.Equal(got, want) {
					t.Fatalf("%d bytes: got %x, want %x", n, got, want)
				}
			}
		})
	}
}
