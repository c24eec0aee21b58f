package plan

import (
	"strings"
)

// BaseImage is the pair of images for one language: the builder compiles
// and installs dependencies, the runner is what ships. Either may be empty
// when the language needs no such stage (a jar has no builder).
type BaseImage struct {
	Builder string
	Runner  string
}

// BaseImages maps a language to its images.
type BaseImages map[Language]BaseImage

// DefaultBaseImages are the languages' official images.
func DefaultBaseImages() BaseImages {
	return BaseImages{
		Go:         {Builder: "golang:1.22-bookworm", Runner: "debian:bookworm-slim"},
		NodeJS:     {Builder: "node:20-bookworm-slim", Runner: "node:20-bookworm-slim"},
		Python:     {Builder: "python:3.12-slim", Runner: "python:3.12-slim"},
		JavaMaven:  {Builder: "maven:3-eclipse-temurin-17", Runner: "eclipse-temurin:17-jre"},
		JavaGradle: {Builder: "gradle:8-jdk17", Runner: "eclipse-temurin:17-jre"},
		JavaJar:    {Runner: "eclipse-temurin:17-jre"},
		JavaWar:    {Runner: "tomcat:10.1-jre17"},
		PHP:        {Builder: "composer:2", Runner: "php:8-apache"},
		Static:     {Runner: "nginx:alpine"},
		Ruby:       {Builder: "ruby:3", Runner: "ruby:3"},
		DotNet:     {Builder: "mcr.microsoft.com/dotnet/sdk:8.0", Runner: "mcr.microsoft.com/dotnet/aspnet:8.0"},
	}
}

// OfflineBaseImages names the images berth builds itself from Debian
// bookworm packages and keeps in its hub under hubPrefix, for machines that
// cannot pull from the internet. Generated Dockerfiles work with these and
// with the official images alike; what each image must provide:
//
//   - base-go-builder: golang-go (or a newer golang-1.x from backports as
//     /usr/bin/go), git and ca-certificates; base-go-runner: plain Debian
//     with ca-certificates (the binary is static).
//   - base-node-builder / base-node-runner: nodejs and npm.
//   - base-python-builder: python3 and python3-pip; base-python-runner:
//     python3 (python-is-python3 lets Procfiles say "python").
//   - base-java-builder: default-jdk and maven; base-java-runner:
//     default-jre-headless.
//   - base-static-runner: a small file server that serves
//     /usr/share/nginx/html on port 80 as its default command (Debian's
//     nginx-light or busybox httpd).
//
// Languages Debian cannot serve (Gradle 8, .NET, Tomcat 10, PHP with
// Composer, Ruby) have no entry: Generate then says so instead of failing
// later on a pull. Merge with DefaultBaseImages to fall back on pulls.
func OfflineBaseImages(hubPrefix string) BaseImages {
	p := strings.TrimSuffix(hubPrefix, "/") + "/berth/base-"
	return BaseImages{
		Go:        {Builder: p + "go-builder", Runner: p + "go-runner"},
		NodeJS:    {Builder: p + "node-builder", Runner: p + "node-runner"},
		Python:    {Builder: p + "python-builder", Runner: p + "python-runner"},
		JavaMaven: {Builder: p + "java-builder", Runner: p + "java-runner"},
		JavaJar:   {Runner: p + "java-runner"},
		Static:    {Runner: p + "static-runner"},
	}
}

// Merge returns b with the entries of other laid over it, field by field.
func (b BaseImages) Merge(other BaseImages) BaseImages {
	out := BaseImages{}
	for k, v := range b {
		out[k] = v
	}
	for k, v := range other {
		cur := out[k]
		if v.Builder != "" {
			cur.Builder = v.Builder
		}
		if v.Runner != "" {
			cur.Runner = v.Runner
		}
		out[k] = cur
	}
	return out
}

// withMirror rewrites ref to pull through a registry mirror: Docker Hub
// images the way pull-through caches lay them out (library/ for official
// images), other registries under their host name. Refs already under the
// prefix are left alone.
func withMirror(prefix, ref string) string {
	prefix = strings.TrimSuffix(prefix, "/")
	if prefix == "" || ref == "" || strings.HasPrefix(ref, prefix+"/") {
		return ref
	}
	first, rest, hasSlash := strings.Cut(ref, "/")
	isHost := hasSlash && (strings.ContainsAny(first, ".:") || first == "localhost")
	switch {
	case isHost && (first == "docker.io" || first == "registry-1.docker.io" || first == "index.docker.io"):
		ref = rest
	case isHost:
		return prefix + "/" + ref
	}
	if !strings.Contains(ref, "/") {
		ref = "library/" + ref
	}
	return prefix + "/" + ref
}
