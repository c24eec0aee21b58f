package store

import (
	"testing"

	"github.com/berth-platform/berth/internal/model"
)

func TestRegistries(t *testing.T) {
	each(t, func(t *testing.T, s Store) {
		fixture(t, s, "shop", "web")
		r := &model.Registry{Team: "shop", Host: "registry.example.com:5000", Username: "ci", Password: "s3cret", SkipVerify: true}
		must(t, s.PutRegistry(bg, r))
		got, err := s.GetRegistry(bg, "shop", r.Host)
		must(t, err)
		same(t, "registry", *got, *r)
		// Put again replaces credentials and keeps the creation time.
		r2 := &model.Registry{Team: "shop", Host: r.Host, Username: "ci", Password: "new", PlainHTTP: true}
		must(t, s.PutRegistry(bg, r2))
		got, err = s.GetRegistry(bg, "shop", r.Host)
		must(t, err)
		if got.Password != "new" || got.SkipVerify || !got.PlainHTTP || !got.CreatedAt.Equal(r.CreatedAt) {
			t.Fatalf("after replace: %+v", got)
		}
		_, err = s.GetRegistry(bg, "blog", r.Host)
		wantErr(t, err, model.ErrNotFound, "")
		wantErr(t, s.PutRegistry(bg, &model.Registry{Team: "nope", Host: "x"}), model.ErrNotFound, `team "nope": not found`)
		list, err := s.ListRegistries(bg, "shop")
		must(t, err)
		if len(list) != 1 {
			t.Fatalf("list: %+v", list)
		}
		must(t, s.DeleteRegistry(bg, "shop", r.Host))
		wantErr(t, s.DeleteRegistry(bg, "shop", r.Host), model.ErrNotFound, "")
		// Registries go with their team.
		must(t, s.PutRegistry(bg, r))
		must(t, s.DeleteTeam(bg, "shop"))
		must(t, s.CreateTeam(bg, &model.Team{Name: "shop"}))
		list, err = s.ListRegistries(bg, "shop")
		must(t, err)
		if len(list) != 0 {
			t.Fatalf("registries outlived their team: %+v", list)
		}
	})
}
