package refdata

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
)

// WriteManifest writes the manifest as JSON lines, one Expected per line.
func WriteManifest(path string, manifest []Expected) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	for _, e := range manifest {
		if err := enc.Encode(e); err != nil {
			f.Close()
			return err
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// ReadManifest reads a manifest written by WriteManifest (numbers kept
// exact, as json.Number).
func ReadManifest(path string) ([]Expected, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Expected
	dec := json.NewDecoder(bufio.NewReader(f))
	dec.UseNumber()
	for dec.More() {
		var e Expected
		if err := dec.Decode(&e); err != nil {
			return nil, fmt.Errorf("manifest %s: record %d: %w", path, len(out)+1, err)
		}
		out = append(out, e)
	}
	return out, nil
}
