package pageview

import (
	"net/http"
	"net/url"
)

// expressPaths serves next with the request path folded the way express 4 matches
// routes by default (Router options caseSensitive: false and strict: false, which the
// original kept): letters in either case, one trailing slash optional. So
// /SERVICE1, /Service1/ and /service1/ are /service1, while /service1// and
// /service1/x are not. Routes must be registered in lower case without a trailing
// slash (addRoutes).
//
// Like express it matches the path as sent, escapes undecoded: /%73ervice1 is not
// /service1. A path sent with escapes (r.URL.RawPath set) is left alone and routed
// raw (gin's UseRawPath): none of our routes holds an escape, so it is a 404 there
// as in express. Letters fold in ASCII only, as a JavaScript /i regexp without the
// u flag folds them.
//
// A folded path reaches next in a copy of the request (as http.StripPrefix does);
// the access log still shows the path as sent (sentPath).
func expressPaths(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.RawPath == "" {
			if p, changed := foldPath(r.URL.Path); changed {
				r2 := new(http.Request)
				*r2 = *r
				r2.URL = new(url.URL)
				*r2.URL = *r.URL
				r2.URL.Path = p
				r = r2
			}
		}
		next.ServeHTTP(w, r)
	})
}

// foldPath returns p in ASCII lower case without one trailing slash ("/" stays),
// and whether that differs from p. It allocates only when it does.
func foldPath(p string) (string, bool) {
	end := len(p)
	if end > 1 && p[end-1] == '/' {
		end--
	}
	upper := false
	for i := range end {
		if 'A' <= p[i] && p[i] <= 'Z' {
			upper = true
			break
		}
	}
	switch {
	case upper:
		return asciiLower(p[:end]), true
	case end < len(p):
		return p[:end], true
	}
	return p, false
}

// sentPath is the path the client sent, escapes undecoded (the request-target
// without its query), for the access log; a request made in-process without a
// RequestURI gives its URL's path.
func sentPath(r *http.Request) string {
	if r.RequestURI == "" || r.RequestURI[0] != '/' {
		return r.URL.Path // in-process, or "*" or an absolute URL: rare enough
	}
	for i := range len(r.RequestURI) {
		if r.RequestURI[i] == '?' {
			return r.RequestURI[:i]
		}
	}
	return r.RequestURI
}
