package tensorboard

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

// The wanted bytes are written out by hand from event.proto and
// summary.proto, independently of protowire.
func TestEventEncoding(t *testing.T) {
	for _, tc := range []struct {
		name string
		e    Event
		want []byte
	}{
		{
			"file version",
			Event{WallTime: 0, FileVersion: "brain.Event:2"},
			append([]byte{0x09, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0x1a, 13}, "brain.Event:2"...),
		},
		{
			"scalar",
			Event{WallTime: 1.5, Step: 3, Values: []Value{{Tag: "a", SimpleValue: 1}}},
			[]byte{
				0x09, 0, 0, 0, 0, 0, 0, 0xf8, 0x3f, // wall_time 1.5 (double)
				0x10, 3, // step 3
				0x2a, 10, // summary, 10 bytes
				0x0a, 8, // value, 8 bytes
				0x0a, 1, 'a', // tag
				0x15, 0, 0, 0x80, 0x3f, // simple_value 1.0 (float)
			},
		},
		{
			"zero value is still written",
			Event{WallTime: 0, Step: 300, Values: []Value{{Tag: "z"}}},
			[]byte{0x09, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0xac, 0x02, 0x2a, 10, 0x0a, 8, 0x0a, 1, 'z', 0x15, 0, 0, 0, 0},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.e.appendProto(nil)
			if !bytes.Equal(got, tc.want) {
				t.Fatalf("encoded\n% x\nwant\n% x", got, tc.want)
			}
			back, err := parseEvent(got)
			if err != nil || !reflect.DeepEqual(back, tc.e) {
				t.Fatalf("decoded %+v, %v; want %+v", back, err, tc.e)
			}
		})
	}
}

func TestParseEventSkipsUnknownAndRejectsBroken(t *testing.T) {
	// Field 7 (an unknown varint) is skipped.
	e, err := parseEvent([]byte{0x10, 5, 0x38, 1})
	if err != nil || e.Step != 5 {
		t.Fatalf("%+v, %v", e, err)
	}
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"truncated double", []byte{0x09, 0, 0}},
		{"summary longer than event", []byte{0x2a, 9, 0x0a}},
		{"step as bytes", []byte{0x12, 1, 0}},
		{"simple_value as varint", []byte{0x2a, 4, 0x0a, 2, 0x10, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := parseEvent(tc.b); !errors.Is(err, ErrMalformed) {
				t.Fatalf("err %v, want ErrMalformed", err)
			}
		})
	}
}
