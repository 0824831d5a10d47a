package event

// The JSON scanner: strict RFC 8259, as encoding/json reads it, in one pass
// with no reflection. It keeps only the contract's fields and attributes,
// unescaped into Decoder.buf, and checks everything else only as JSON.

import (
	"bytes"
	"slices"
	"unicode/utf16"
	"unicode/utf8"
)

// parse reads the message as one JSON object, keeping the contract's fields
// and the attributes, and checking the rest only as JSON.
func (d *Decoder) parse(data []byte) error {
	d.data, d.pos = data, 0
	d.fields = [nFields]token{}
	d.attrs = d.attrs[:0]
	d.buf = d.buf[:0]

	d.skipSpace()
	if d.pos == len(data) {
		return errorf(ReasonMalformedJSON, "empty message; send one JSON object")
	}
	if data[d.pos] != '{' {
		return errorf(ReasonMalformedJSON, "not a JSON object: it starts with %s", quote(data[d.pos:min(d.pos+16, len(data))]))
	}
	d.pos++
	if err := d.object(fOther, 1); err != nil {
		return err
	}
	d.skipSpace()
	if d.pos != len(data) {
		return d.syntax("after the event object")
	}

	if len(d.attrs) > 1 {
		buf := d.buf
		slices.SortFunc(d.attrs, func(a, b attr) int {
			return bytes.Compare(buf[a.key.start:a.key.end], buf[b.key.start:b.key.end])
		})
		for i := 1; i < len(d.attrs); i++ {
			if k := d.str(d.attrs[i].key); bytes.Equal(k, d.str(d.attrs[i-1].key)) {
				return errorf(ReasonMalformedJSON, "field %q: attribute %s is given twice", "attributes", quote(k))
			}
		}
	}
	return nil
}

// object reads the members of an object whose '{' has been read. in is the
// contract field the object is the value of: fOther for the event itself and
// for ignored objects, fAttributes for the attributes.
func (d *Decoder) object(in field, depth int) error {
	top := in == fOther && depth == 1
	d.skipSpace()
	if d.pos < len(d.data) && d.data[d.pos] == '}' {
		d.pos++
		return nil
	}
	for {
		d.skipSpace()
		if d.pos == len(d.data) || d.data[d.pos] != '"' {
			return d.syntax("where an object member's name should start")
		}
		d.pos++
		var err error
		var name token
		if in == fAttributes {
			name.kind, name.start = kindString, len(d.buf)
			d.buf, err = d.string(d.buf, true)
			name.end = len(d.buf)
		} else {
			d.key, err = d.string(d.key[:0], top)
		}
		if err != nil {
			return err
		}
		d.skipSpace()
		if d.pos == len(d.data) || d.data[d.pos] != ':' {
			return d.syntax("after an object member's name, where ':' should be")
		}
		d.pos++
		d.skipSpace()

		switch {
		case in == fAttributes:
			val, err := d.value(true, depth)
			if err != nil {
				return err
			}
			d.attrs = append(d.attrs, attr{key: name, val: val})
		case top:
			f := lookupField(d.key)
			if f == fOther {
				if _, err := d.value(false, depth); err != nil {
					return err
				}
				break
			}
			if d.fields[f].kind != kindAbsent {
				return errorf(ReasonMalformedJSON, "field %q is given twice", fieldNames[f])
			}
			if d.peek && f != fType && f != fEventID {
				t, err := d.value(false, depth)
				if err != nil {
					return err
				}
				d.fields[f] = token{kind: t.kind}
				break
			}
			if f == fAttributes && d.pos < len(d.data) && d.data[d.pos] == '{' {
				d.pos++
				d.fields[f] = token{kind: kindObject}
				if err := d.object(fAttributes, depth+1); err != nil {
					return err
				}
				break
			}
			t, err := d.value(true, depth)
			if err != nil {
				return err
			}
			d.fields[f] = t
		default:
			if _, err := d.value(false, depth); err != nil {
				return err
			}
		}

		d.skipSpace()
		if d.pos == len(d.data) {
			return d.syntax("inside an object, where ',' or '}' should be")
		}
		switch d.data[d.pos] {
		case ',':
			d.pos++
		case '}':
			d.pos++
			return nil
		default:
			return d.syntax("after an object member, where ',' or '}' should be")
		}
	}
}

// value reads any JSON value at d.pos, the value of a member at the given
// depth. With keep, a string is unescaped into d.buf.
func (d *Decoder) value(keep bool, depth int) (token, error) {
	if d.pos == len(d.data) {
		return token{}, d.syntax("where a value should be")
	}
	switch c := d.data[d.pos]; {
	case c == '"':
		d.pos++
		t := token{kind: kindString, start: len(d.buf)}
		var err error
		d.buf, err = d.string(d.buf, keep)
		t.end = len(d.buf)
		return t, err
	case c == '{' || c == '[':
		if depth >= maxDepth {
			return token{}, errorf(ReasonMalformedJSON, "at byte %d: nested deeper than %d", d.pos, maxDepth)
		}
		d.pos++
		if c == '{' {
			return token{kind: kindObject}, d.object(fOther, depth+1)
		}
		return token{kind: kindArray}, d.array(depth + 1)
	case c == '-' || '0' <= c && c <= '9':
		start := d.pos
		if err := d.number(); err != nil {
			return token{}, err
		}
		return token{kind: kindNumber, start: start, end: d.pos}, nil
	case c == 't':
		return token{kind: kindBool}, d.literal("true")
	case c == 'f':
		return token{kind: kindBool}, d.literal("false")
	case c == 'n':
		return token{kind: kindNull}, d.literal("null")
	}
	return token{}, d.syntax("where a value should be")
}

func (d *Decoder) array(depth int) error {
	d.skipSpace()
	if d.pos < len(d.data) && d.data[d.pos] == ']' {
		d.pos++
		return nil
	}
	for {
		d.skipSpace()
		if _, err := d.value(false, depth); err != nil {
			return err
		}
		d.skipSpace()
		if d.pos == len(d.data) {
			return d.syntax("inside an array, where ',' or ']' should be")
		}
		switch d.data[d.pos] {
		case ',':
			d.pos++
		case ']':
			d.pos++
			return nil
		default:
			return d.syntax("after an array element, where ',' or ']' should be")
		}
	}
}

func (d *Decoder) literal(lit string) error {
	if !bytes.HasPrefix(d.data[d.pos:], []byte(lit)) {
		return d.syntax("where a value should be")
	}
	d.pos += len(lit)
	return nil
}

// number reads a number with exactly JSON's grammar:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (d *Decoder) number() error {
	b, i := d.data, d.pos
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		i = digits(b, i)
	default:
		d.pos = i
		return d.syntax("in a number, where a digit should be")
	}
	if i < len(b) && b[i] == '.' {
		i++
		if j := digits(b, i); j == i {
			d.pos = i
			return d.syntax("in a number, where a digit should follow '.'")
		} else {
			i = j
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if j := digits(b, i); j == i {
			d.pos = i
			return d.syntax("in a number, where an exponent's digit should be")
		} else {
			i = j
		}
	}
	d.pos = i
	return nil
}

func digits(b []byte, i int) int {
	for i < len(b) && '0' <= b[i] && b[i] <= '9' {
		i++
	}
	return i
}

// plain marks the bytes that a string holds as they are: not '"', '\\', a
// control character or the start of a multi-byte UTF-8 sequence.
var plain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// string reads a string whose opening quote has been read, checking JSON's
// rules and UTF-8. With keep it appends the unescaped text to dst.
func (d *Decoder) string(dst []byte, keep bool) ([]byte, error) {
	b, i := d.data, d.pos
	run := i // start of the bytes not yet appended
	for {
		for i < len(b) && plain[b[i]] {
			i++
		}
		if i == len(b) {
			break
		}
		switch c := b[i]; {
		case c == '"':
			if keep {
				dst = append(dst, b[run:i]...)
			}
			d.pos = i + 1
			return dst, nil
		case c == '\\':
			if keep {
				dst = append(dst, b[run:i]...)
			}
			var err error
			if dst, i, err = d.escape(dst, i, keep); err != nil {
				return dst, err
			}
			run = i
		case c < 0x20:
			d.pos = i
			return dst, d.syntax("in a string: control characters must be escaped")
		default:
			r, n := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && n == 1 {
				return dst, errorf(ReasonMalformedJSON, "at byte %d: not UTF-8", i)
			}
			i += n
		}
	}
	d.pos = i
	return dst, d.syntax("in a string, where the closing '\"' should be")
}

// escape reads the escape sequence at b[i] == '\\' and returns the index
// after it. Surrogates are decoded as encoding/json does: a valid pair is one
// character, anything else U+FFFD.
func (d *Decoder) escape(dst []byte, i int, keep bool) ([]byte, int, error) {
	b := d.data
	if i+1 >= len(b) {
		d.pos = i
		return dst, i, d.syntax("in a string's escape sequence")
	}
	var r rune
	switch b[i+1] {
	case '"', '\\', '/':
		r = rune(b[i+1])
	case 'b':
		r = '\b'
	case 'f':
		r = '\f'
	case 'n':
		r = '\n'
	case 'r':
		r = '\r'
	case 't':
		r = '\t'
	case 'u':
		r = hex4(b, i)
		if r < 0 {
			d.pos = i
			return dst, i, d.syntax(`in a string: \u must be followed by 4 hex digits`)
		}
		i += 6
		if utf16.IsSurrogate(r) {
			if r2 := hex4(b, i); r2 >= 0 {
				if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
					r = dec
					i += 6
				} else {
					r = utf8.RuneError
				}
			} else {
				r = utf8.RuneError
			}
		}
		if keep {
			dst = utf8.AppendRune(dst, r)
		}
		return dst, i, nil
	default:
		d.pos = i
		return dst, i, d.syntax("in a string: unknown escape sequence")
	}
	if keep {
		dst = append(dst, byte(r))
	}
	return dst, i + 2, nil
}

// hex4 returns the value of \uXXXX at b[i:], or -1 if there is none.
func hex4(b []byte, i int) rune {
	if i+6 > len(b) || b[i] != '\\' || b[i+1] != 'u' {
		return -1
	}
	var r rune
	for _, c := range b[i+2 : i+6] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r<<4 | rune(c)
	}
	return r
}

func (d *Decoder) skipSpace() {
	b, i := d.data, d.pos
	for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\t' || b[i] == '\r') {
		i++
	}
	d.pos = i
}

// syntax reports invalid JSON at d.pos.
func (d *Decoder) syntax(where string) *Error {
	if d.pos >= len(d.data) {
		return errorf(ReasonMalformedJSON, "unexpected end of JSON %s", where)
	}
	return errorf(ReasonMalformedJSON, "at byte %d: unexpected %s %s", d.pos, quote(d.data[d.pos:d.pos+1]), where)
}
