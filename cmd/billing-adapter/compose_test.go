package main

import (
	"os/exec"
	"testing"
)

// docker-compose.yml is valid, its stripe-cli profile too, where a Compose
// is installed (`docker compose` or `docker-compose`); no engine is needed
// to check the file. Machines of this kind have no Docker engine, so no
// image is built or started here (README, "Other ways to run").
func TestComposeFileIsValid(t *testing.T) {
	var cmd []string
	if exec.Command("docker", "compose", "version").Run() == nil {
		cmd = []string{"docker", "compose"}
	} else if p, err := exec.LookPath("docker-compose"); err == nil {
		cmd = []string{p}
	} else {
		t.Skip("no docker compose or docker-compose on this machine")
	}
	for _, profile := range []string{"", "stripe-cli"} {
		args := append(cmd[1:], "-f", "../../docker-compose.yml")
		if profile != "" {
			args = append(args, "--profile", profile)
		}
		out, err := exec.Command(cmd[0], append(args, "config", "-q")...).CombinedOutput()
		if err != nil {
			t.Errorf("%v config (profile %q): %v\n%s", cmd, profile, err, out)
		}
	}
}
