package worker

import "strconv"

// HintSource says why upstream (an instance's host:port) of a component
// refuses connections, from what the instance listens on; "" when it
// cannot tell. An upstream without a host (":8080") asks about any of the
// component's instances, ready or not.
type HintSource func(componentID, upstream string) string

// listenHinter is a runtime driver that can read what an instance listens
// on (the containerd driver).
type listenHinter interface {
	ListenHint(componentID, upstream string) string
}

// ListenHint is the runtime's explanation of a refused upstream; a third
// party component's endpoints are no instance of berth's, so nothing.
func (r *Reconciler) ListenHint(componentID, upstream string) string {
	if _, ok := r.ThirdParty.Endpoints(componentID); ok {
		return ""
	}
	h, ok := r.driver.(listenHinter)
	if !ok {
		return ""
	}
	return h.ListenHint(componentID, upstream)
}

// hint is the route's Hint for componentID's upstreams, nil without hints.
func (s *GatewaySync) hint(componentID string) func(string) string {
	if s.Hints == nil {
		return nil
	}
	return func(upstream string) string { return s.Hints(componentID, upstream) }
}

// notReady is the route's NotReady: what the component's instances listen
// on instead of port, nil without hints.
func (s *GatewaySync) notReady(componentID string, port int) func() string {
	if s.Hints == nil {
		return nil
	}
	anyInstance := ":" + strconv.Itoa(port)
	return func() string { return s.Hints(componentID, anyInstance) }
}
