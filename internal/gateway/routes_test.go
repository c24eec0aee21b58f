package gateway

import (
	"net/http/httptest"
	"testing"
)

func TestLongestPrefixHeadersAndWildcards(t *testing.T) {
	tab := NewTable([]Route{
		{ID: "root", Domain: "shop.example.com", Path: "/"},
		{ID: "api", Domain: "shop.example.com", Path: "/api"},
		{ID: "api-v2", Domain: "shop.example.com", Path: "/api/v2"},
		{ID: "beta", Domain: "shop.example.com", Path: "/api", Headers: map[string]string{"X-Beta": "1"}},
		{ID: "wild", Domain: "*.example.com", Path: "/"},
	})
	for _, tc := range []struct{ host, path, header, want string }{
		{"shop.example.com", "/", "", "root"},
		{"shop.example.com", "/apix", "", "root"},
		{"shop.example.com", "/api", "", "api"},
		{"shop.example.com", "/api/items", "", "api"},
		{"shop.example.com", "/api/v2/items", "", "api-v2"},
		{"shop.example.com", "/api/items", "1", "beta"},
		{"SHOP.example.com:8080", "/api", "", "api"},
		{"blog.example.com", "/x", "", "wild"},
		{"example.org", "/", "", ""},
	} {
		r := httptest.NewRequest("GET", "http://"+tc.host+tc.path, nil)
		r.Host = tc.host
		if tc.header != "" {
			r.Header.Set("X-Beta", tc.header)
		}
		got := ""
		if m := tab.Match(r); m != nil {
			got = m.ID
		}
		if got != tc.want {
			t.Errorf("%s%s (beta %q): got %q, want %q", tc.host, tc.path, tc.header, got, tc.want)
		}
	}
}

func TestWeightsSplitTraffic(t *testing.T) {
	tab := NewTable([]Route{
		{ID: "stable", Domain: "a.example.com", Path: "/", Weight: 90},
		{ID: "canary", Domain: "a.example.com", Path: "/", Weight: 10},
	})
	counts := map[string]int{}
	r := httptest.NewRequest("GET", "http://a.example.com/", nil)
	const n = 20000
	for i := 0; i < n; i++ {
		counts[tab.Match(r).ID]++
	}
	if share := float64(counts["canary"]) / n; share < 0.08 || share > 0.12 {
		t.Fatalf("canary share %.3f, want 0.10 ± 0.02 (%v)", share, counts)
	}
}
