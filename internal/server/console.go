package server

import (
	"net/http"

	"github.com/berth-platform/berth/web"
)

func consoleHandler() http.Handler { return web.Handler() }
