package api

import (
	"context"

	"github.com/berth-platform/berth/internal/model"
)

func contextWithPrincipal(ctx context.Context, t *model.Token) context.Context {
	return context.WithValue(ctx, principalKey{}, t)
}

// registerRoutes is the API's table of contents; openapi.json documents the
// same list (a test keeps them equal).
func (a *API) registerRoutes() {
	a.handlePublic("GET /healthz", a.healthz)
	a.handlePublic("GET /readyz", a.readyz)
	a.handle("GET /metrics", a.serveMetrics)
	a.handlePublic("GET /api/v1/openapi.json", serveOpenAPI)
	a.mux.HandleFunc("/api/", a.unmatched)

	a.handle("GET /api/v1/whoami", a.whoami)

	a.handle("GET /api/v1/teams", a.listTeams)
	a.handle("POST /api/v1/teams", a.createTeam)
	a.handle("GET /api/v1/teams/{team}", a.getTeam)
	a.handle("DELETE /api/v1/teams/{team}", a.deleteTeam)

	a.handle("GET /api/v1/teams/{team}/members", a.listMembers)
	a.handle("POST /api/v1/teams/{team}/members", a.createMember)
	a.handle("PATCH /api/v1/teams/{team}/members/{member}", a.updateMember)
	a.handle("DELETE /api/v1/teams/{team}/members/{member}", a.deleteMember)

	a.handle("GET /api/v1/teams/{team}/tokens", a.listTokens)
	a.handle("POST /api/v1/teams/{team}/tokens", a.createToken)
	a.handle("DELETE /api/v1/teams/{team}/tokens/{id}", a.deleteToken)

	a.handle("GET /api/v1/teams/{team}/apps", a.listApps)
	a.handle("POST /api/v1/teams/{team}/apps", a.createApp)
	a.handle("GET /api/v1/teams/{team}/apps/{app}", a.getApp)
	a.handle("PATCH /api/v1/teams/{team}/apps/{app}", a.updateApp)
	a.handle("DELETE /api/v1/teams/{team}/apps/{app}", a.deleteApp)
	a.handle("GET /api/v1/teams/{team}/apps/{app}/topology", a.topology)
	a.handle("POST /api/v1/teams/{team}/apps/{app}/start", a.appAction("start"))
	a.handle("POST /api/v1/teams/{team}/apps/{app}/stop", a.appAction("stop"))

	const c = "/api/v1/teams/{team}/apps/{app}/components"
	a.handle("GET "+c, a.listComponents)
	a.handle("POST "+c, a.createComponent)
	a.handle("GET "+c+"/{component}", a.getComponent)
	a.handle("PATCH "+c+"/{component}", a.updateComponent)
	a.handle("DELETE "+c+"/{component}", a.deleteComponent)

	a.handle("GET "+c+"/{component}/ports", a.listPorts)
	a.handle("POST "+c+"/{component}/ports", a.createPort)
	a.handle("PATCH "+c+"/{component}/ports/{port}", a.updatePort)
	a.handle("DELETE "+c+"/{component}/ports/{port}", a.deletePort)
	a.handle("GET "+c+"/{component}/gateway-errors", a.gatewayErrors)
	a.handle("GET "+c+"/{component}/endpoints", a.listEndpoints)
	a.handle("POST "+c+"/{component}/build", a.build)
	a.handle("POST "+c+"/{component}/uploads", a.createUpload)
	a.handle("GET "+c+"/{component}/uploads/{upload}", a.getUpload)
	a.handle("PATCH "+c+"/{component}/uploads/{upload}", a.appendUpload)
	a.handlePublic("POST /api/v1/webhooks/{id}", a.webhook)
	a.handle("POST /api/v1/images/prepare", a.prepareImages)
	a.handlePublic("PUT "+c+"/{component}/endpoints", a.registerEndpoints)

	a.handle("GET "+c+"/{component}/envs", a.listEnvs)
	a.handle("POST "+c+"/{component}/envs", a.createEnv)
	a.handle("PATCH "+c+"/{component}/envs/{name}", a.updateEnv)
	a.handle("DELETE "+c+"/{component}/envs/{name}", a.deleteEnv)

	a.handle("GET "+c+"/{component}/volumes", a.listVolumes)
	a.handle("POST "+c+"/{component}/volumes", a.createVolume)
	a.handle("DELETE "+c+"/{component}/volumes/{name}", a.deleteVolume)

	a.handle("GET "+c+"/{component}/dependencies", a.listDependencies)
	a.handle("POST "+c+"/{component}/dependencies", a.createDependency)
	a.handle("DELETE "+c+"/{component}/dependencies/{dependency}", a.deleteDependency)

	a.handle("GET "+c+"/{component}/versions", a.listVersions)
	a.handle("GET "+c+"/{component}/versions/{number}", a.getVersion)
	a.handle("DELETE "+c+"/{component}/versions/{number}", a.deleteVersion)

	a.handle("GET "+c+"/{component}/instances", a.listInstances)
	a.handle("GET "+c+"/{component}/logs", a.componentLogs)
	a.handle("GET "+c+"/{component}/instances/{instance}/exec", a.exec)
	a.handle("POST "+c+"/{component}/instances/{instance}/exec", a.execCommand)
	a.handle("GET "+c+"/{component}/events", a.listComponentEvents)

	for _, action := range []string{"deploy", "start", "stop", "restart", "scale", "rollback"} {
		a.handle("POST "+c+"/{component}/"+action, a.componentAction(action))
	}

	a.handle("GET /api/v1/teams/{team}/http-rules", a.listHTTPRules)
	a.handle("POST /api/v1/teams/{team}/http-rules", a.createHTTPRule)
	a.handle("GET /api/v1/teams/{team}/http-rules/{id}", a.getHTTPRule)
	a.handle("PATCH /api/v1/teams/{team}/http-rules/{id}", a.updateHTTPRule)
	a.handle("DELETE /api/v1/teams/{team}/http-rules/{id}", a.deleteHTTPRule)

	a.handle("GET /api/v1/teams/{team}/tcp-rules", a.listTCPRules)
	a.handle("POST /api/v1/teams/{team}/tcp-rules", a.createTCPRule)
	a.handle("GET /api/v1/teams/{team}/tcp-rules/{id}", a.getTCPRule)
	a.handle("DELETE /api/v1/teams/{team}/tcp-rules/{id}", a.deleteTCPRule)

	a.handle("GET /api/v1/teams/{team}/certificates", a.listCertificates)
	a.handle("POST /api/v1/teams/{team}/certificates", a.createCertificate)
	a.handle("GET /api/v1/teams/{team}/certificates/{name}", a.getCertificate)
	a.handle("DELETE /api/v1/teams/{team}/certificates/{name}", a.deleteCertificate)

	a.handle("GET /api/v1/domains", a.listDomains)
	a.handle("GET /api/v1/domains/{domain}", a.getDomain)
	a.handle("PUT /api/v1/domains/{domain}", a.putDomain)
	a.handle("DELETE /api/v1/domains/{domain}", a.deleteDomain)

	a.handle("GET /api/v1/teams/{team}/registries", a.listRegistries)
	a.handle("POST /api/v1/teams/{team}/registries", a.putRegistry)
	a.handle("GET /api/v1/teams/{team}/registries/{host}", a.getRegistry)
	a.handle("DELETE /api/v1/teams/{team}/registries/{host}", a.deleteRegistry)

	a.handle("GET /api/v1/teams/{team}/events", a.listTeamEvents)
	a.handle("GET /api/v1/events", a.listEvents)
	a.handle("GET /api/v1/events/{id}", a.getEvent)
	a.handle("POST /api/v1/events/{id}/cancel", a.cancelEvent)
	a.handle("GET /api/v1/events/{id}/log", a.eventLog)
	a.handle("GET /api/v1/events/{id}/log/ws", a.eventLogWebSocket)
}
