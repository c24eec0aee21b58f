package store

import (
	"errors"
	"testing"
	"time"

	"github.com/berth-platform/berth/internal/model"
)

func TestTeams(t *testing.T) {
	each(t, func(t *testing.T, s Store) {
		shop := &model.Team{Name: "shop"}
		must(t, s.CreateTeam(bg, shop))
		if shop.ID == "" || shop.CreatedAt.IsZero() {
			t.Fatalf("CreateTeam did not fill ID and CreatedAt: %+v", shop)
		}
		must(t, s.CreateTeam(bg, &model.Team{Name: "blog"}))
		wantErr(t, s.CreateTeam(bg, &model.Team{Name: "shop"}), model.ErrConflict, `team "shop" already exists: conflict`)

		got, err := s.GetTeam(bg, "shop")
		must(t, err)
		same(t, "team", *got, *shop)
		_, err = s.GetTeam(bg, "nope")
		wantErr(t, err, model.ErrNotFound, `team "nope": not found`)

		list, err := s.ListTeams(bg)
		must(t, err)
		if len(list) != 2 || list[0].Name != "blog" || list[1].Name != "shop" {
			t.Fatalf("ListTeams = %+v, want blog and shop by name", list)
		}

		must(t, s.DeleteTeam(bg, "blog"))
		wantErr(t, s.DeleteTeam(bg, "blog"), model.ErrNotFound, `team "blog": not found`)
		list, err = s.ListTeams(bg)
		must(t, err)
		same(t, "teams after delete", list, []model.Team{*shop})

		var verr *model.ValidationError
		if err := s.CreateTeam(bg, nil); !errors.As(err, &verr) {
			t.Fatalf("CreateTeam(nil) = %v, want a validation error", err)
		}
	})
}

func TestEmptyListsAreNotNil(t *testing.T) {
	each(t, func(t *testing.T, s Store) {
		teams, err := s.ListTeams(bg)
		must(t, err)
		apps, err := s.ListApps(bg, "x")
		must(t, err)
		if teams == nil || apps == nil {
			t.Fatal("empty listings must be empty slices, not nil")
		}
	})
}

func TestMembers(t *testing.T) {
	each(t, func(t *testing.T, s Store) {
		must(t, s.CreateTeam(bg, &model.Team{Name: "shop"}))
		ann := &model.Member{Team: "shop", Name: "ann", Role: model.RoleDeveloper}
		must(t, s.PutMember(bg, ann))
		must(t, s.PutMember(bg, &model.Member{Team: "shop", Name: "bob", Role: model.RoleViewer}))

		// Updating the role keeps the creation time of the first put.
		again := &model.Member{Team: "shop", Name: "ann", Role: model.RoleAdmin, CreatedAt: ann.CreatedAt.Add(time.Hour)}
		must(t, s.PutMember(bg, again))
		same(t, "created_at after update", again.CreatedAt, ann.CreatedAt)
		got, err := s.GetMember(bg, "shop", "ann")
		must(t, err)
		same(t, "member", *got, *again)

		list, err := s.ListMembers(bg, "shop")
		must(t, err)
		if len(list) != 2 || list[0].Name != "ann" || list[1].Name != "bob" {
			t.Fatalf("ListMembers = %+v", list)
		}

		wantErr(t, s.PutMember(bg, &model.Member{Team: "nope", Name: "ann", Role: model.RoleViewer}),
			model.ErrNotFound, `team "nope": not found`)
		_, err = s.GetMember(bg, "shop", "carl")
		wantErr(t, err, model.ErrNotFound, `member "carl" in team "shop": not found`)

		// DeleteMember takes the member's tokens along, and only those.
		must(t, s.CreateToken(bg, &model.Token{Name: "ann-cli", Team: "shop", Member: "ann", Role: model.RoleAdmin, Hash: "h-ann"}))
		must(t, s.CreateToken(bg, &model.Token{Name: "ci", Team: "shop", Role: model.RoleDeveloper, Hash: "h-ci"}))
		must(t, s.DeleteMember(bg, "shop", "ann"))
		_, err = s.GetTokenByHash(bg, "h-ann")
		wantErr(t, err, model.ErrNotFound, "")
		if _, err := s.GetTokenByHash(bg, "h-ci"); err != nil {
			t.Fatalf("a token of no member went with the member: %v", err)
		}
		wantErr(t, s.DeleteMember(bg, "shop", "ann"), model.ErrNotFound, `member "ann" in team "shop": not found`)
	})
}

func TestTokens(t *testing.T) {
	each(t, func(t *testing.T, s Store) {
		must(t, s.CreateTeam(bg, &model.Team{Name: "shop"}))
		must(t, s.PutMember(bg, &model.Member{Team: "shop", Name: "ann", Role: model.RoleOwner}))

		admin := &model.Token{Name: "admin", Admin: true, Hash: "h-admin"}
		must(t, s.CreateToken(bg, admin))
		used := time.Now().Add(-time.Minute)
		ann := &model.Token{Name: "ann", Team: "shop", Member: "ann", Role: model.RoleOwner, Hash: "h-ann", LastUsedAt: &used}
		must(t, s.CreateToken(bg, ann))

		got, err := s.GetTokenByHash(bg, "h-admin")
		must(t, err)
		same(t, "admin token", *got, *admin)
		got, err = s.GetTokenByHash(bg, "h-ann")
		must(t, err)
		same(t, "team token", *got, *ann)
		_, err = s.GetTokenByHash(bg, "h-nope")
		wantErr(t, err, model.ErrNotFound, `token: not found`)

		err = s.CreateToken(bg, &model.Token{Name: "dup", Team: "shop", Hash: "h-ann"})
		wantErr(t, err, model.ErrConflict, `token "dup" (or its secret) already exists: conflict`)
		wantErr(t, s.CreateToken(bg, &model.Token{Name: "x", Team: "nope", Hash: "h-x"}), model.ErrNotFound, `team "nope": not found`)
		wantErr(t, s.CreateToken(bg, &model.Token{Name: "x", Team: "shop", Member: "zed", Hash: "h-x"}),
			model.ErrNotFound, `member "zed" in team "shop": not found`)

		list, err := s.ListTokens(bg, "shop")
		must(t, err)
		same(t, "team tokens", list, []model.Token{*ann})
		list, err = s.ListTokens(bg, "")
		must(t, err)
		same(t, "tokens of no team", list, []model.Token{*admin})

		at := time.Now()
		must(t, s.TouchToken(bg, admin.ID, at))
		got, err = s.GetTokenByHash(bg, "h-admin")
		must(t, err)
		if got.LastUsedAt == nil || !got.LastUsedAt.Equal(storeTime(at)) {
			t.Fatalf("LastUsedAt = %v, want %v", got.LastUsedAt, storeTime(at))
		}
		wantErr(t, s.TouchToken(bg, "nope", at), model.ErrNotFound, `token "nope": not found`)

		// A token is deleted only through its own team.
		wantErr(t, s.DeleteToken(bg, "", ann.ID), model.ErrNotFound, "")
		must(t, s.DeleteToken(bg, "shop", ann.ID))
		must(t, s.DeleteToken(bg, "", admin.ID))
		wantErr(t, s.DeleteToken(bg, "", admin.ID), model.ErrNotFound, "")
	})
}

func TestApps(t *testing.T) {
	each(t, func(t *testing.T, s Store) {
		must(t, s.CreateTeam(bg, &model.Team{Name: "shop"}))
		web := &model.App{Team: "shop", Name: "web", Labels: map[string]string{"tier": "front"}}
		must(t, s.CreateApp(bg, web))
		empty := &model.App{Team: "shop", Name: "api", Labels: map[string]string{}}
		must(t, s.CreateApp(bg, empty))
		bare := &model.App{Team: "shop", Name: "batch"}
		must(t, s.CreateApp(bg, bare))

		for _, want := range []*model.App{web, empty, bare} {
			got, err := s.GetApp(bg, "shop", want.Name)
			must(t, err)
			same(t, "app "+want.Name, *got, *want)
		}
		wantErr(t, s.CreateApp(bg, &model.App{Team: "shop", Name: "web"}), model.ErrConflict, `app "web" in team "shop" already exists: conflict`)
		wantErr(t, s.CreateApp(bg, &model.App{Team: "nope", Name: "web"}), model.ErrNotFound, `team "nope": not found`)
		_, err := s.GetApp(bg, "shop", "nope")
		wantErr(t, err, model.ErrNotFound, `app "nope" in team "shop": not found`)

		list, err := s.ListApps(bg, "shop")
		must(t, err)
		same(t, "apps", list, []model.App{*empty, *bare, *web})

		upd := &model.App{Team: "shop", Name: "web", Labels: map[string]string{"tier": "edge"}}
		must(t, s.UpdateApp(bg, upd))
		same(t, "updated app keeps id and created_at", *upd, model.App{ID: web.ID, Team: "shop", Name: "web", Labels: upd.Labels, CreatedAt: web.CreatedAt})
		got, err := s.GetApp(bg, "shop", "web")
		must(t, err)
		same(t, "updated app", *got, *upd)
		wantErr(t, s.UpdateApp(bg, &model.App{Team: "shop", Name: "nope"}), model.ErrNotFound, `app "nope" in team "shop": not found`)

		fixture(t, s, "shop", "web", "front")
		wantErr(t, s.DeleteApp(bg, "shop", "web"), model.ErrConflict, `app "web" in team "shop" still has components: conflict`)
		must(t, s.DeleteComponent(bg, "shop", "web", "front"))
		must(t, s.DeleteApp(bg, "shop", "web"))
		wantErr(t, s.DeleteApp(bg, "shop", "web"), model.ErrNotFound, `app "web" in team "shop": not found`)
	})
}

func TestDeleteTeamCascades(t *testing.T) {
	each(t, func(t *testing.T, s Store) {
		cs := fixture(t, s, "shop", "web", "api", "db")
		fixture(t, s, "shop", "jobs", "cron")
		other := fixture(t, s, "blog", "web", "api")
		must(t, s.PutMember(bg, &model.Member{Team: "shop", Name: "ann", Role: model.RoleOwner}))
		must(t, s.CreateToken(bg, &model.Token{Name: "ann", Team: "shop", Member: "ann", Role: model.RoleOwner, Hash: "h1"}))
		must(t, s.CreateToken(bg, &model.Token{Name: "ci", Team: "shop", Role: model.RoleDeveloper, Hash: "h2"}))
		must(t, s.AddDependency(bg, model.Dependency{Team: "shop", From: "api", To: "db"}))
		must(t, s.CreateVersion(bg, &model.Version{ComponentID: cs[0].ID, Image: "api:1", Status: model.VersionSuccess}))
		must(t, s.CreateHTTPRule(bg, &model.HTTPRule{Team: "shop", Domain: "shop.example.com", Path: "/", Component: "api", Port: 80, Weight: 100}))
		must(t, s.CreateTCPRule(bg, &model.TCPRule{Team: "shop", GatewayPort: 30001, Component: "db", Port: 5432}))
		must(t, s.CreateCertificate(bg, &model.Certificate{Team: "shop", Name: "wild", Domains: []string{"*.example.com"}}))
		ev := &model.Event{Team: "shop", Type: "deploy", Target: "component:shop/web/api"}
		must(t, s.CreateEvent(bg, ev, nil))

		must(t, s.DeleteTeam(bg, "shop"))

		for name, n := range map[string]func() (int, error){
			"apps":         func() (int, error) { l, err := s.ListApps(bg, "shop"); return len(l), err },
			"components":   func() (int, error) { l, err := s.ListComponents(bg, "shop", ""); return len(l), err },
			"members":      func() (int, error) { l, err := s.ListMembers(bg, "shop"); return len(l), err },
			"tokens":       func() (int, error) { l, err := s.ListTokens(bg, "shop"); return len(l), err },
			"dependencies": func() (int, error) { l, err := s.ListDependencies(bg, "shop"); return len(l), err },
			"versions":     func() (int, error) { l, err := s.ListVersions(bg, cs[0].ID); return len(l), err },
			"http rules":   func() (int, error) { l, err := s.ListHTTPRules(bg, "shop"); return len(l), err },
			"tcp rules":    func() (int, error) { l, err := s.ListTCPRules(bg, "shop"); return len(l), err },
			"certificates": func() (int, error) { l, err := s.ListCertificates(bg, "shop"); return len(l), err },
		} {
			got, err := n()
			must(t, err)
			if got != 0 {
				t.Errorf("%d %s of the deleted team remain", got, name)
			}
		}
		if _, err := s.GetEvent(bg, ev.ID); err != nil {
			t.Errorf("events are history and must outlive the team: %v", err)
		}
		if _, err := s.GetComponentByID(bg, other[0].ID); err != nil {
			t.Errorf("another team's component went too: %v", err)
		}
		// The freed gateway port can be taken again.
		must(t, s.CreateTCPRule(bg, &model.TCPRule{Team: "blog", GatewayPort: 30001, Component: "api", Port: 80}))
	})
}
