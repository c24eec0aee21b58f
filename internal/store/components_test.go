package store

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/berth-platform/berth/internal/model"
)

// fullComponent sets every field, with nil and empty slices mixed, so a
// round trip shows anything the store drops or changes.
func fullComponent(team, app, alias string) *model.Component {
	return &model.Component{
		Team: team, App: app, Alias: alias, Kind: model.KindSource,
		Source:    &model.Source{Type: "git", URL: "https://git.example.com/shop.git", Branch: "main", Subdir: "api"},
		Endpoints: []string{},
		Instances: 3, Memory: 512 << 20, CPU: 500, RestartEvent: "ev-restartedbefore1",
		Cmd:  []string{"/bin/api"},
		Args: nil,
		Ports: []model.Port{
			{Port: 8080, Protocol: model.ProtoHTTP, Alias: "API", Inner: true, Outer: true},
			{Port: 9090, Protocol: model.ProtoGRPC, Alias: "API_GRPC", Inner: true},
		},
		Envs:          []model.Env{{Name: "DB_URL", Value: "postgres://db", Scope: model.ScopeInner, Secret: true}},
		Volumes:       []model.Volume{},
		Readiness:     &model.Probe{Type: model.ProbeHTTP, Port: 8080, Path: "/ready", PeriodSeconds: 5},
		Liveness:      &model.Probe{Type: model.ProbeExec, Command: []string{}},
		SettleSeconds: 5,
		Desired:       model.DesiredRunning, DeployVersion: 7,
		Status: model.StatusRunning, StatusMessage: "all good",
	}
}

func TestComponents(t *testing.T) {
	each(t, func(t *testing.T, s Store) {
		fixture(t, s, "shop", "web")
		fixture(t, s, "shop", "jobs")
		api := fullComponent("shop", "web", "api")
		must(t, s.CreateComponent(bg, api))
		if api.ID == "" || api.Revision != 1 || api.CreatedAt.IsZero() || api.UpdatedAt != api.CreatedAt {
			t.Fatalf("CreateComponent did not fill ID, Revision 1 and times: %+v", api)
		}
		cron := fixture(t, s, "shop", "jobs", "cron")[0]

		for name, get := range map[string]func() (*model.Component, error){
			"GetComponent":        func() (*model.Component, error) { return s.GetComponent(bg, "shop", "web", "api") },
			"GetComponentByAlias": func() (*model.Component, error) { return s.GetComponentByAlias(bg, "shop", "api") },
			"GetComponentByID":    func() (*model.Component, error) { return s.GetComponentByID(bg, api.ID) },
		} {
			got, err := get()
			must(t, err)
			same(t, name, *got, *api)
		}
		_, err := s.GetComponent(bg, "shop", "jobs", "api")
		wantErr(t, err, model.ErrNotFound, `component "api" in app "jobs" of team "shop": not found`)
		_, err = s.GetComponentByAlias(bg, "shop", "nope")
		wantErr(t, err, model.ErrNotFound, `component "nope" in team "shop": not found`)
		_, err = s.GetComponentByID(bg, "nope")
		wantErr(t, err, model.ErrNotFound, `component with id "nope": not found`)

		// Aliases are unique per team, across its apps, but not across teams.
		wantErr(t, s.CreateComponent(bg, fullComponent("shop", "jobs", "api")), model.ErrConflict,
			`component "api" in team "shop" already exists: conflict`)
		fixture(t, s, "blog", "web", "api")
		wantErr(t, s.CreateComponent(bg, fullComponent("shop", "nope", "x")), model.ErrNotFound, `app "nope" in team "shop": not found`)

		list, err := s.ListComponents(bg, "shop", "web")
		must(t, err)
		same(t, "components of web", list, []model.Component{*api})
		list, err = s.ListComponents(bg, "shop", "")
		must(t, err)
		same(t, "components of shop", list, []model.Component{*cron, *api})
		list, err = s.ListAllComponents(bg)
		must(t, err)
		if len(list) != 3 || list[0].Team != "blog" {
			t.Fatalf("ListAllComponents = %d components, first of team %q", len(list), list[0].Team)
		}
	})
}

func TestUpdateComponent(t *testing.T) {
	each(t, func(t *testing.T, s Store) {
		fixture(t, s, "shop", "web")
		api := fullComponent("shop", "web", "api")
		must(t, s.CreateComponent(bg, api))
		fixture(t, s, "shop", "web", "db")

		stale := *api
		api.Instances, api.Status = 5, model.StatusUpgrade
		api.Envs = append(api.Envs, model.Env{Name: "MODE", Value: "fast", Scope: model.ScopeBoth})
		must(t, s.UpdateComponent(bg, api))
		if api.Revision != 2 || api.UpdatedAt.Before(api.CreatedAt) {
			t.Fatalf("after update: revision %d, updated %v", api.Revision, api.UpdatedAt)
		}
		got, err := s.GetComponentByID(bg, api.ID)
		must(t, err)
		same(t, "updated component", *got, *api)

		wantErr(t, s.UpdateComponent(bg, &stale), model.ErrStale,
			`component "api" in team "shop": revision 1, stored 2: stale revision`)
		missing := *api
		missing.ID = "nope"
		wantErr(t, s.UpdateComponent(bg, &missing), model.ErrNotFound, `component "api" in team "shop": not found`)

		// Of writers that read the same revision, exactly one wins.
		var wg sync.WaitGroup
		results := make(chan error, 8)
		for i := range 8 {
			c := *got
			c.Instances = i
			wg.Go(func() { results <- s.UpdateComponent(bg, &c) })
		}
		wg.Wait()
		close(results)
		wins := 0
		for err := range results {
			switch {
			case err == nil:
				wins++
			case !isStale(err):
				t.Fatalf("concurrent update: %v", err)
			}
		}
		if wins != 1 {
			t.Fatalf("%d concurrent updates of one revision succeeded, want 1", wins)
		}

		// A rename must not take another component's alias, and carries the
		// dependencies and rules along.
		must(t, s.AddDependency(bg, model.Dependency{Team: "shop", From: "api", To: "db"}))
		must(t, s.CreateHTTPRule(bg, &model.HTTPRule{Team: "shop", Domain: "a.example.com", Path: "/", Component: "api", Port: 8080, Weight: 100}))
		cur, err := s.GetComponentByID(bg, api.ID)
		must(t, err)
		cur.Alias = "db"
		wantErr(t, s.UpdateComponent(bg, cur), model.ErrConflict, `component "db" in team "shop" already exists: conflict`)
		cur.Alias = "backend"
		must(t, s.UpdateComponent(bg, cur))
		deps, err := s.ListDependencies(bg, "shop")
		must(t, err)
		same(t, "dependencies after rename", deps, []model.Dependency{{Team: "shop", From: "backend", To: "db"}})
		rules, err := s.ListHTTPRules(bg, "shop")
		must(t, err)
		if len(rules) != 1 || rules[0].Component != "backend" {
			t.Fatalf("http rules after rename: %+v", rules)
		}
	})
}

func isStale(err error) bool { return errors.Is(err, model.ErrStale) }

func TestDeleteComponentCascades(t *testing.T) {
	each(t, func(t *testing.T, s Store) {
		cs := fixture(t, s, "shop", "web", "api", "db", "cache")
		api := cs[0]
		must(t, s.AddDependency(bg, model.Dependency{Team: "shop", From: "api", To: "db"}))
		must(t, s.AddDependency(bg, model.Dependency{Team: "shop", From: "cache", To: "api"}))
		must(t, s.AddDependency(bg, model.Dependency{Team: "shop", From: "cache", To: "db"}))
		must(t, s.CreateVersion(bg, &model.Version{ComponentID: api.ID, Image: "api:1"}))
		must(t, s.CreateHTTPRule(bg, &model.HTTPRule{Team: "shop", Domain: "a.example.com", Path: "/", Component: "api", Port: 80, Weight: 100}))
		must(t, s.CreateHTTPRule(bg, &model.HTTPRule{Team: "shop", Domain: "d.example.com", Path: "/", Component: "db", Port: 80, Weight: 100}))
		must(t, s.CreateTCPRule(bg, &model.TCPRule{Team: "shop", GatewayPort: 30080, Component: "api", Port: 80}))

		must(t, s.DeleteComponent(bg, "shop", "web", "api"))
		wantErr(t, s.DeleteComponent(bg, "shop", "web", "api"), model.ErrNotFound, `component "api" in app "web" of team "shop": not found`)

		deps, err := s.ListDependencies(bg, "shop")
		must(t, err)
		same(t, "dependencies", deps, []model.Dependency{{Team: "shop", From: "cache", To: "db"}})
		vs, err := s.ListVersions(bg, api.ID)
		must(t, err)
		same(t, "versions", len(vs), 0)
		hr, err := s.ListHTTPRules(bg, "shop")
		must(t, err)
		if len(hr) != 1 || hr[0].Component != "db" {
			t.Fatalf("http rules: %+v", hr)
		}
		tr, err := s.ListTCPRules(bg, "shop")
		must(t, err)
		same(t, "tcp rules", len(tr), 0)
	})
}

func TestDependencies(t *testing.T) {
	each(t, func(t *testing.T, s Store) {
		fixture(t, s, "shop", "web", "api", "db")
		fixture(t, s, "shop", "jobs", "cron")
		d := model.Dependency{Team: "shop", From: "cron", To: "db"} // across apps of the team
		must(t, s.AddDependency(bg, d))
		must(t, s.AddDependency(bg, model.Dependency{Team: "shop", From: "api", To: "db"}))
		wantErr(t, s.AddDependency(bg, d), model.ErrConflict, `dependency "cron" -> "db" in team "shop" already exists: conflict`)
		wantErr(t, s.AddDependency(bg, model.Dependency{Team: "shop", From: "api", To: "nope"}), model.ErrNotFound,
			`component "api" or "nope" in team "shop": not found`)

		list, err := s.ListDependencies(bg, "shop")
		must(t, err)
		same(t, "dependencies", list, []model.Dependency{{Team: "shop", From: "api", To: "db"}, d})

		must(t, s.RemoveDependency(bg, d))
		wantErr(t, s.RemoveDependency(bg, d), model.ErrNotFound, `dependency "cron" -> "db" in team "shop": not found`)
	})
}

func TestVersions(t *testing.T) {
	each(t, func(t *testing.T, s Store) {
		cs := fixture(t, s, "shop", "web", "api", "db")
		api, db := cs[0], cs[1]
		var created []model.Version
		for i := 1; i <= 3; i++ {
			v := &model.Version{ComponentID: api.ID, Image: fmt.Sprintf("api:%d", i), Status: model.VersionBuilding}
			must(t, s.CreateVersion(bg, v))
			if v.Number != int64(i) {
				t.Fatalf("version %d got number %d", i, v.Number)
			}
			created = append(created, *v)
		}
		// Numbers are per component.
		first := &model.Version{ComponentID: db.ID, Image: "db:1"}
		must(t, s.CreateVersion(bg, first))
		same(t, "first number of another component", first.Number, int64(1))

		// A given number is taken as is when free, and raises the counter.
		stamp := &model.Version{ComponentID: api.ID, Number: 20250304050607, Image: "api:stamp"}
		must(t, s.CreateVersion(bg, stamp))
		same(t, "given number", stamp.Number, int64(20250304050607))
		wantErr(t, s.CreateVersion(bg, &model.Version{ComponentID: api.ID, Number: 2}), model.ErrConflict,
			fmt.Sprintf("version 2 of component %q already exists: conflict", api.ID))
		next := &model.Version{ComponentID: api.ID}
		must(t, s.CreateVersion(bg, next))
		same(t, "number after a given one", next.Number, int64(20250304050608))

		// A deleted number is not handed out again.
		must(t, s.DeleteVersion(bg, api.ID, next.Number))
		again := &model.Version{ComponentID: api.ID}
		must(t, s.CreateVersion(bg, again))
		same(t, "number after deleting the newest", again.Number, int64(20250304050609))

		wantErr(t, s.CreateVersion(bg, &model.Version{ComponentID: "nope"}), model.ErrNotFound, `component with id "nope": not found`)

		v := created[1]
		v.Status, v.Digest, v.DurationMS, v.Commit, v.Author, v.Message, v.EventID =
			model.VersionSuccess, "sha256:abc", 1234, "deadbeef", "ann", "fix", "ev1"
		must(t, s.UpdateVersion(bg, &v))
		got, err := s.GetVersion(bg, api.ID, 2)
		must(t, err)
		same(t, "updated version", *got, v)
		wantErr(t, s.UpdateVersion(bg, &model.Version{ComponentID: api.ID, Number: 99}), model.ErrNotFound,
			fmt.Sprintf("version 99 of component %q: not found", api.ID))

		list, err := s.ListVersions(bg, api.ID)
		must(t, err)
		var numbers []int64
		for _, v := range list {
			numbers = append(numbers, v.Number)
		}
		same(t, "numbers newest first", numbers, []int64{20250304050609, 20250304050607, 3, 2, 1})

		must(t, s.DeleteVersion(bg, api.ID, 1))
		_, err = s.GetVersion(bg, api.ID, 1)
		wantErr(t, err, model.ErrNotFound, "")
		wantErr(t, s.DeleteVersion(bg, api.ID, 1), model.ErrNotFound, "")
	})
}

func TestCreateVersionConcurrent(t *testing.T) {
	each(t, func(t *testing.T, s Store) {
		api := fixture(t, s, "shop", "web", "api")[0]
		var wg sync.WaitGroup
		var mu sync.Mutex
		seen := map[int64]bool{}
		for range 8 {
			wg.Go(func() {
				for range 5 {
					v := &model.Version{ComponentID: api.ID}
					if err := s.CreateVersion(bg, v); err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					seen[v.Number] = true
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		for n := int64(1); n <= 40; n++ {
			if !seen[n] {
				t.Fatalf("number %d missing; got %v", n, seen)
			}
		}
	})
}
