package server

import (
	"slices"
	"testing"
)

func TestRegistryMirrors(t *testing.T) {
	regs, err := registryMirrors([]string{"docker.io=mirror.example.com", "ghcr.io=a.example, b.example", "docker.io=second.example"})
	if err != nil {
		t.Fatal(err)
	}
	if len(regs) != 2 || regs[0].Host != "docker.io" || !slices.Equal(regs[0].Mirrors, []string{"mirror.example.com", "second.example"}) ||
		regs[1].Host != "ghcr.io" || !slices.Equal(regs[1].Mirrors, []string{"a.example", "b.example"}) {
		t.Fatalf("mirrors %+v", regs)
	}
	for _, bad := range []string{"docker.io", "=m.example", "docker.io="} {
		if _, err := registryMirrors([]string{bad}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
