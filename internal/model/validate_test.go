package model

import (
	"errors"
	"strings"
	"testing"
)

func TestPortAliasesAreDistinct(t *testing.T) {
	c := &Component{Alias: "web-api", Image: "nginx", Ports: []Port{{Port: 80}, {Port: 8080}, {Port: 9090, Alias: "ADMIN"}}}
	c.Normalize()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	got := []string{c.Ports[0].Alias, c.Ports[1].Alias, c.Ports[2].Alias}
	if strings.Join(got, ",") != "WEB_API,WEB_API_8080,ADMIN" {
		t.Fatalf("aliases %v", got)
	}
	c.Ports[2].Alias = "WEB_API"
	var verr *ValidationError
	if err := c.Validate(); !errors.As(err, &verr) || verr.Field != "ports[2].alias" {
		t.Fatalf("duplicate alias accepted: %v", err)
	}
}

func TestQuantities(t *testing.T) {
	for in, want := range map[string]int64{"512Mi": 512 << 20, "1Gi": 1 << 30, "100M": 100e6, "1024": 1024, "": 0} {
		got, err := ParseBytes("memory", in)
		if err != nil || got != want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"lots", "-1Mi", "1.5Gi", "99999999999999Ti"} {
		if _, err := ParseBytes("memory", bad); err == nil {
			t.Errorf("ParseBytes(%q) accepted", bad)
		}
	}
	for in, want := range map[string]int64{"500m": 500, "0.5": 500, "2": 2000} {
		got, err := ParseCPU("cpu", in)
		if err != nil || got != want {
			t.Errorf("ParseCPU(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	if FormatBytes(512<<20) != "512Mi" || FormatCPU(1500) != "1500m" || FormatCPU(2000) != "2" {
		t.Error("format round trip")
	}
}

func TestImageReferences(t *testing.T) {
	for _, ok := range []string{"nginx", "nginx:1.25", "127.0.0.1:5000/team/app:v1", "ghcr.io/a/b@sha256:" + strings.Repeat("a", 64)} {
		if err := ValidateImage("image", ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "Nginx:1", "a b", "nginx:", "-x"} {
		if err := ValidateImage("image", bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestIDs(t *testing.T) {
	id := NewID("ev")
	if !IsEventID(id) || IsEventID("ev-short") || IsEventID("api") {
		t.Fatalf("IsEventID(%q)", id)
	}
}
