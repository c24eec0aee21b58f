// Package plan decides how a directory of code becomes an image: Detect
// finds the language and its tool from the files present (the way Rainbond
// and Heroku buildpacks do), and Generate writes a multi-stage Dockerfile for
// BuildKit whose dependency layers survive source changes. A Dockerfile of
// the user's own is used as it is.
//
// Detection reads only the directory; Generate is pure, so a plan can be
// shown, diffed and tested without building anything.
package plan
