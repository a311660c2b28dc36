package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"cohort/cuda"
	"cohort/engine/cpu"
)

type versionCmd struct{}

// Run prints what this binary is and can do.
func (versionCmd) Run(io streams) error {
	tags := "none"
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "-tags" && s.Value != "" {
				tags = s.Value
			}
		}
	}
	_, err := fmt.Fprintf(io.Out, "cohort %s\ngo %s %s/%s\nbuild tags: %s\nblas: %s\ncuda: %s\n",
		version, runtime.Version(), runtime.GOOS, runtime.GOARCH, tags, cpu.BLASName, cuda.Describe())
	return err
}
