package tensorboard

import (
	"fmt"
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// Event is the subset of TensorFlow's Event proto this package writes: the
// file-version header, or scalar values at a step.
type Event struct {
	// WallTime is seconds since the Unix epoch.
	WallTime    float64
	Step        int64
	FileVersion string
	Values      []Value
}

// Value is one scalar of a Summary.
type Value struct {
	Tag         string
	SimpleValue float32
}

// Field numbers of tensorflow/core/util/event.proto and
// tensorflow/core/framework/summary.proto.
const (
	eventWallTime    protowire.Number = 1
	eventStep        protowire.Number = 2
	eventFileVersion protowire.Number = 3
	eventSummary     protowire.Number = 5
	summaryValue     protowire.Number = 1
	valueTag         protowire.Number = 1
	valueSimple      protowire.Number = 2
)

// appendProto encodes e as an Event message.
func (e Event) appendProto(b []byte) []byte {
	b = protowire.AppendTag(b, eventWallTime, protowire.Fixed64Type)
	b = protowire.AppendFixed64(b, math.Float64bits(e.WallTime))
	b = protowire.AppendTag(b, eventStep, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(e.Step))
	if e.FileVersion != "" {
		b = protowire.AppendTag(b, eventFileVersion, protowire.BytesType)
		b = protowire.AppendString(b, e.FileVersion)
	}
	if len(e.Values) == 0 {
		return b
	}
	var summary []byte
	for _, v := range e.Values {
		// simple_value sits in a oneof, so it is written even when 0.
		size := protowire.SizeTag(valueTag) + protowire.SizeBytes(len(v.Tag)) +
			protowire.SizeTag(valueSimple) + protowire.SizeFixed32()
		summary = protowire.AppendTag(summary, summaryValue, protowire.BytesType)
		summary = protowire.AppendVarint(summary, uint64(size))
		summary = protowire.AppendTag(summary, valueTag, protowire.BytesType)
		summary = protowire.AppendString(summary, v.Tag)
		summary = protowire.AppendTag(summary, valueSimple, protowire.Fixed32Type)
		summary = protowire.AppendFixed32(summary, math.Float32bits(v.SimpleValue))
	}
	b = protowire.AppendTag(b, eventSummary, protowire.BytesType)
	return protowire.AppendBytes(b, summary)
}

// parseEvent decodes an Event message; fields this package does not write
// are skipped.
func parseEvent(b []byte) (Event, error) {
	var e Event
	err := eachField(b, func(num protowire.Number, typ protowire.Type, field []byte) error {
		switch {
		case num == eventWallTime && typ == protowire.Fixed64Type:
			v, _ := protowire.ConsumeFixed64(field)
			e.WallTime = math.Float64frombits(v)
		case num == eventStep && typ == protowire.VarintType:
			v, _ := protowire.ConsumeVarint(field)
			e.Step = int64(v)
		case num == eventFileVersion && typ == protowire.BytesType:
			v, _ := protowire.ConsumeString(field)
			e.FileVersion = v
		case num == eventSummary && typ == protowire.BytesType:
			v, _ := protowire.ConsumeBytes(field)
			vals, err := parseSummary(v)
			if err != nil {
				return err
			}
			e.Values = append(e.Values, vals...)
		case num == eventWallTime || num == eventStep || num == eventFileVersion || num == eventSummary:
			return fmt.Errorf("%w: event field %d has wire type %d", ErrMalformed, num, typ)
		}
		return nil
	})
	return e, err
}

func parseSummary(b []byte) ([]Value, error) {
	var vals []Value
	err := eachField(b, func(num protowire.Number, typ protowire.Type, field []byte) error {
		if num != summaryValue {
			return nil
		}
		if typ != protowire.BytesType {
			return fmt.Errorf("%w: summary value has wire type %d", ErrMalformed, typ)
		}
		raw, _ := protowire.ConsumeBytes(field)
		var v Value
		err := eachField(raw, func(num protowire.Number, typ protowire.Type, field []byte) error {
			switch {
			case num == valueTag && typ == protowire.BytesType:
				v.Tag, _ = protowire.ConsumeString(field)
			case num == valueSimple && typ == protowire.Fixed32Type:
				bits, _ := protowire.ConsumeFixed32(field)
				v.SimpleValue = math.Float32frombits(bits)
			case num == valueTag || num == valueSimple:
				return fmt.Errorf("%w: value field %d has wire type %d", ErrMalformed, num, typ)
			}
			return nil
		})
		vals = append(vals, v)
		return err
	})
	return vals, err
}

// eachField calls fn with each field's number, wire type and encoded value
// (already checked to be complete).
func eachField(b []byte, fn func(protowire.Number, protowire.Type, []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("%w: %w", ErrMalformed, protowire.ParseError(n))
		}
		b = b[n:]
		m := protowire.ConsumeFieldValue(num, typ, b)
		if m < 0 {
			return fmt.Errorf("%w: field %d: %w", ErrMalformed, num, protowire.ParseError(m))
		}
		if err := fn(num, typ, b[:m]); err != nil {
			return err
		}
		b = b[m:]
	}
	return nil
}
