package hub

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/distribution/reference"
)

// PlatformNamespace is the hub namespace of berth's own images. No team
// token or team credential may push or delete in it, even a team that
// happens to be called "berth": builds of every team start FROM its base
// images.
const PlatformNamespace = "berth"

// baseImagePrefix starts the repositories `berth images prepare` pushes
// (berth/base-<lang>-<role>); every team may pull them.
const baseImagePrefix = PlatformNamespace + "/base-"

// IsBaseImage reports whether repo is one of the platform's base images.
func IsBaseImage(repo string) bool {
	return strings.HasPrefix(repo, baseImagePrefix) && len(repo) > len(baseImagePrefix)
}

// TeamMayUse reports whether team's workloads and builds may pull repo:
// repositories of its own namespace ("<team>/...") and the platform's base
// images, nothing else.
func TeamMayUse(team, repo string) bool {
	if IsBaseImage(repo) {
		return true
	}
	owner, rest, ok := strings.Cut(repo, "/")
	return ok && rest != "" && team != "" && owner == team
}

// ErrImageNotAllowed is wrapped by ImageRuleError.
var ErrImageNotAllowed = errors.New("hub image not allowed")

// ImageRuleError says which rule a reference to the hub breaks and how to
// fix it; the API answers it 422 image_not_allowed.
type ImageRuleError struct {
	Team, Image, Repository string
}

func (e *ImageRuleError) Error() string {
	return fmt.Sprintf("%s is the hub repository %s, which does not belong to team %s: a team may only use hub repositories of its own namespace (%s/...) or the platform's base images (%s...); push the image to %s/... with a token of team %s, or name an image of another registry",
		e.Image, e.Repository, e.Team, e.Team, baseImagePrefix, e.Team, e.Team)
}

func (e *ImageRuleError) Unwrap() error { return ErrImageNotAllowed }

// CheckImage refuses a reference to the hub at hubHost (by any loopback
// name of it) that team may not use. References to other registries pass.
func CheckImage(team, image, hubHost string) error {
	repo, onHub := Repository(image, hubHost)
	if !onHub || TeamMayUse(team, repo) {
		return nil
	}
	return &ImageRuleError{Team: team, Image: image, Repository: repo}
}

// Repository returns the hub repository image names when its registry is
// the hub at hubHost. A reference that does not parse is not on the hub
// (its own validation reports it).
func Repository(image, hubHost string) (repo string, onHub bool) {
	named, err := reference.ParseNormalizedNamed(image)
	if err != nil || hubHost == "" {
		return "", false
	}
	if !SameHost(reference.Domain(named), hubHost) {
		return "", false
	}
	return reference.Path(named), true
}

// SameHost reports whether the registry host a names the hub at b: the same
// name, or both a loopback or unspecified address (localhost, 127.0.0.1,
// [::1], 0.0.0.0 all reach a hub on loopback) with the same port.
func SameHost(a, b string) bool {
	if strings.EqualFold(a, b) {
		return true
	}
	ah, ap, err1 := net.SplitHostPort(a)
	bh, bp, err2 := net.SplitHostPort(b)
	if err1 != nil || err2 != nil || ap != bp {
		return false
	}
	return isLocal(ah) && isLocal(bh)
}

func isLocal(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && (ip.IsLoopback() || ip.IsUnspecified())
}

// Usernames of the credentials the hub mints for teams. The password is an
// HMAC of the username, so the hub keeps no list and a restart keeps them
// valid; rotating auth/internal.secret revokes them all.
const (
	teamPullUser  = "berth-team-pull/"  // + team
	teamBuildUser = "berth-team-build/" // + team + "/" + repository
)

// TeamPullCredentials returns the credential team's workloads pull with:
// pull on "<team>/..." and the platform's base images, nothing else. Unlike
// InternalCredentials it cannot reach another team's images, so handing it
// to the runtime for a team's image keeps the wall even for a reference
// that slipped past CheckImage.
func (h *Hub) TeamPullCredentials(team string) (username, password string) {
	username = teamPullUser + team
	return username, h.teamSecret(username)
}

// TeamBuildCredentials returns the credential a build of team uses in
// BuildKit, where one credential per registry host serves both the FROM
// pulls and the push: TeamPullCredentials plus push of repo, which must be
// in team's namespace.
func (h *Hub) TeamBuildCredentials(team, repo string) (username, password string, err error) {
	if owner, rest, ok := strings.Cut(repo, "/"); !ok || owner != team || rest == "" {
		return "", "", fmt.Errorf("hub: repository %q is not in team %q's namespace", repo, team)
	}
	username = teamBuildUser + repo
	return username, h.teamSecret(username), nil
}

// teamSecret is the password of a minted username.
func (h *Hub) teamSecret(username string) string {
	key := sha256.Sum256([]byte("berth hub team credential\x00" + h.internal.Password))
	mac := hmac.New(sha256.New, key[:])
	mac.Write([]byte(username))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// teamPrincipal checks a minted credential; ok is false for any other
// username or a wrong password, which then go to Config.Auth like any
// other login.
func (h *Hub) teamPrincipal(username, password string) (Principal, bool) {
	var team, push string
	switch {
	case strings.HasPrefix(username, teamPullUser):
		team = strings.TrimPrefix(username, teamPullUser)
	case strings.HasPrefix(username, teamBuildUser):
		push = strings.TrimPrefix(username, teamBuildUser)
		team, _, _ = strings.Cut(push, "/")
	default:
		return Principal{}, false
	}
	if team == "" || strings.Contains(team, "/") ||
		!hmac.Equal([]byte(password), []byte(h.teamSecret(username))) {
		return Principal{}, false
	}
	p := Principal{Subject: username, Teams: []string{team}, Pull: true}
	if push != "" {
		p.Push, p.PushRepos = true, []string{push}
	}
	return p, true
}
