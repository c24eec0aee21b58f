package store

import (
	"testing"
	"time"

	"github.com/berth-platform/berth/internal/model"
)

func TestHTTPRules(t *testing.T) {
	each(t, func(t *testing.T, s Store) {
		fixture(t, s, "shop", "web", "api", "front")
		a := &model.HTTPRule{Team: "shop", Domain: "shop.example.com", Path: "/api", Component: "api", Port: 8080,
			Certificate: "wild", Weight: 90, Headers: map[string]string{"X-Env": "prod"}}
		b := &model.HTTPRule{Team: "shop", Domain: "shop.example.com", Path: "/", Component: "front", Port: 80,
			Weight: 100, Headers: map[string]string{}}
		// Same domain and path as a, for a weighted split: allowed.
		c := &model.HTTPRule{Team: "shop", Domain: "shop.example.com", Path: "/api", Component: "front", Port: 80, Weight: 10}
		for _, r := range []*model.HTTPRule{a, b, c} {
			must(t, s.CreateHTTPRule(bg, r))
		}
		got, err := s.GetHTTPRule(bg, "shop", a.ID)
		must(t, err)
		same(t, "http rule", *got, *a)
		_, err = s.GetHTTPRule(bg, "blog", a.ID)
		wantErr(t, err, model.ErrNotFound, `http rule "`+a.ID+`" in team "blog": not found`)
		wantErr(t, s.CreateHTTPRule(bg, &model.HTTPRule{Team: "shop", Domain: "x.example.com", Path: "/", Component: "nope", Port: 80, Weight: 1}),
			model.ErrNotFound, `component "nope" in team "shop": not found`)
		wantErr(t, s.CreateHTTPRule(bg, &model.HTTPRule{ID: a.ID, Team: "shop", Component: "api"}), model.ErrConflict, "")

		list, err := s.ListHTTPRules(bg, "shop")
		must(t, err)
		if len(list) != 3 || list[0].ID != b.ID {
			t.Fatalf("ListHTTPRules: %+v", list)
		}

		upd := *a
		upd.Path, upd.Weight, upd.Headers, upd.CreatedAt = "/v2", 50, nil, time.Time{}
		must(t, s.UpdateHTTPRule(bg, &upd))
		same(t, "created_at kept", upd.CreatedAt, a.CreatedAt)
		got, err = s.GetHTTPRule(bg, "shop", a.ID)
		must(t, err)
		same(t, "updated http rule", *got, upd)
		upd.Component = "nope"
		wantErr(t, s.UpdateHTTPRule(bg, &upd), model.ErrNotFound, `component "nope" in team "shop": not found`)
		wantErr(t, s.UpdateHTTPRule(bg, &model.HTTPRule{Team: "shop", ID: "nope", Component: "api"}), model.ErrNotFound,
			`http rule "nope" in team "shop": not found`)

		must(t, s.DeleteHTTPRule(bg, "shop", a.ID))
		wantErr(t, s.DeleteHTTPRule(bg, "shop", a.ID), model.ErrNotFound, "")
	})
}

func TestTCPRules(t *testing.T) {
	each(t, func(t *testing.T, s Store) {
		fixture(t, s, "shop", "web", "db")
		fixture(t, s, "blog", "web", "db")
		r := &model.TCPRule{Team: "shop", GatewayPort: 30432, Component: "db", Port: 5432}
		must(t, s.CreateTCPRule(bg, r))
		got, err := s.GetTCPRule(bg, "shop", r.ID)
		must(t, err)
		same(t, "tcp rule", *got, *r)

		// Gateway ports are unique across teams.
		wantErr(t, s.CreateTCPRule(bg, &model.TCPRule{Team: "blog", GatewayPort: 30432, Component: "db", Port: 5432}),
			model.ErrConflict, `gateway port 30432 is taken: conflict`)
		b := &model.TCPRule{Team: "blog", GatewayPort: 30100, Component: "db", Port: 3306}
		must(t, s.CreateTCPRule(bg, b))
		wantErr(t, s.CreateTCPRule(bg, &model.TCPRule{Team: "shop", GatewayPort: 30001, Component: "nope", Port: 1}),
			model.ErrNotFound, `component "nope" in team "shop": not found`)
		if err := s.CreateTCPRule(bg, &model.TCPRule{Team: "shop", Component: "db", Port: 1}); err == nil {
			t.Fatal("a rule without a gateway port was stored")
		}

		list, err := s.ListTCPRules(bg, "shop")
		must(t, err)
		same(t, "shop rules", list, []model.TCPRule{*r})
		all, err := s.ListAllTCPRules(bg)
		must(t, err)
		same(t, "all rules by port", all, []model.TCPRule{*b, *r})

		_, err = s.GetTCPRule(bg, "blog", r.ID)
		wantErr(t, err, model.ErrNotFound, "")
		wantErr(t, s.DeleteTCPRule(bg, "blog", r.ID), model.ErrNotFound, `tcp rule "`+r.ID+`" in team "blog": not found`)
		must(t, s.DeleteTCPRule(bg, "shop", r.ID))
		_, err = s.GetTCPRule(bg, "shop", r.ID)
		wantErr(t, err, model.ErrNotFound, "")
	})
}

func TestCertificates(t *testing.T) {
	each(t, func(t *testing.T, s Store) {
		must(t, s.CreateTeam(bg, &model.Team{Name: "shop"}))
		must(t, s.CreateTeam(bg, &model.Team{Name: "blog"}))
		c := &model.Certificate{Team: "shop", Name: "wild", CertPEM: "CERT", KeyPEM: "KEY",
			Domains: []string{"*.example.com", "example.com"}, NotAfter: time.Now().Add(90 * 24 * time.Hour)}
		must(t, s.CreateCertificate(bg, c))
		got, err := s.GetCertificate(bg, "shop", "wild")
		must(t, err)
		same(t, "certificate", *got, *c)

		wantErr(t, s.CreateCertificate(bg, &model.Certificate{Team: "shop", Name: "wild"}), model.ErrConflict,
			`certificate "wild" in team "shop" already exists: conflict`)
		must(t, s.CreateCertificate(bg, &model.Certificate{Team: "blog", Name: "wild"}))
		wantErr(t, s.CreateCertificate(bg, &model.Certificate{Team: "nope", Name: "x"}), model.ErrNotFound, `team "nope": not found`)

		list, err := s.ListCertificates(bg, "shop")
		must(t, err)
		same(t, "certificates", list, []model.Certificate{*c})

		must(t, s.DeleteCertificate(bg, "shop", "wild"))
		_, err = s.GetCertificate(bg, "shop", "wild")
		wantErr(t, err, model.ErrNotFound, `certificate "wild" in team "shop": not found`)
		wantErr(t, s.DeleteCertificate(bg, "shop", "wild"), model.ErrNotFound, "")
	})
}
