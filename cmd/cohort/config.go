package main

import "cohort/engine/config"

// configCmd prints the resolved config, to check merges and overrides.
type configCmd struct {
	Config    []string `short:"c" name:"config" required:"" placeholder:"FILE" help:"Task config files, deep-merged in order."`
	Overrides []string `arg:"" optional:"" placeholder:"KEY=VALUE" help:"Hydra-style overrides."`
}

// Run prints the YAML.
func (c *configCmd) Run(io streams) error {
	cfg, err := config.Load(c.Config, c.Overrides)
	if err != nil {
		return err
	}
	y, err := cfg.YAML()
	if err != nil {
		return err
	}
	_, err = io.Out.Write(y)
	return err
}
