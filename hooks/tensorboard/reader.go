package tensorboard

import (
	"bufio"
	"fmt"
	"io"
	"os"
)

// ReadEvents decodes every event of an event file, checking both CRCs of
// every record.
func ReadEvents(path string) ([]Event, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("tensorboard %s: %w", path, err)
	}
	defer f.Close()
	r := bufio.NewReader(f)
	var events []Event
	for {
		data, err := readRecord(r)
		if err == io.EOF {
			return events, nil
		}
		if err != nil {
			return events, fmt.Errorf("tensorboard %s: event %d: %w", path, len(events), err)
		}
		e, err := parseEvent(data)
		if err != nil {
			return events, fmt.Errorf("tensorboard %s: event %d: %w", path, len(events), err)
		}
		events = append(events, e)
	}
}
