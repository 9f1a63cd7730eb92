package mapper

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"
)

// Query is the GraphQL document a Source sends to the network-mapper, against the schema in
// otterize/network-mapper src/mappergraphql/schema.graphql:
//
//	intents(namespaces: [String!], includeLabels: [String!], excludeServiceWithLabels: [String!],
//	        includeAllLabels: Boolean, server: ServerFilter): [Intent!]!
//	type Intent { client: OtterizeServiceIdentity!  server: OtterizeServiceIdentity!  type: IntentType ... }
//	type OtterizeServiceIdentity { name: String!  namespace: String!  podOwnerKind: GroupVersionKind ... }
//
// It sends no arguments. The namespaces argument filters on the client's namespace only, so
// using it would drop the ingress from other namespaces (see Config.Namespaces); the label
// arguments only shape the labels returned, which shadowgate does not read. No field of the
// schema carries when an edge was last seen: the store's per-edge timestamp is not exposed,
// and identity.resolutionData.lastSeen is a debug string fixed when the mapper first
// resolved the identity. Edges are therefore timed by the poll that discovered them.
const Query = `query ShadowgateIntents {
  intents {
    client {
      name
      namespace
      podOwnerKind {
        kind
      }
    }
    server {
      name
      namespace
      podOwnerKind {
        kind
      }
    }
  }
}
`

// OperationName names the operation in Query.
const OperationName = "ShadowgateIntents"

type request struct {
	OperationName string `json:"operationName"`
	Query         string `json:"query"`
	// Variables is always sent, empty, as GraphQL clients commonly do.
	Variables map[string]any `json:"variables"`
}

type response struct {
	Data *struct {
		// A pointer, to tell a null or missing list (an error) from an empty one.
		Intents *[]intent `json:"intents"`
	} `json:"data"`
	Errors []gqlError `json:"errors"`
}

type gqlError struct {
	Message    string         `json:"message"`
	Path       []any          `json:"path"`
	Extensions map[string]any `json:"extensions"`
}

func (e gqlError) String() string {
	s := e.Message
	if len(e.Path) > 0 {
		parts := make([]string, len(e.Path))
		for i, p := range e.Path {
			parts[i] = fmt.Sprint(p)
		}
		s += " (at " + strings.Join(parts, ".") + ")"
	}
	if code, ok := e.Extensions["code"].(string); ok && code != "" {
		s += " [" + code + "]"
	}
	return s
}

type intent struct {
	Client *identity `json:"client"`
	Server *identity `json:"server"`
}

type identity struct {
	Name         string `json:"name"`
	Namespace    string `json:"namespace"`
	PodOwnerKind *struct {
		Kind string `json:"kind"`
	} `json:"podOwnerKind"`
}

func (id *identity) kind() string {
	if id.PodOwnerKind == nil {
		return ""
	}
	return id.PodOwnerKind.Kind
}

// decodeResponse returns the intents of a mapper answer, or an error saying what is wrong
// with it: a non-2xx status, GraphQL errors, or a body that is not a GraphQL answer.
func decodeResponse(status int, contentType string, body []byte) ([]intent, error) {
	var resp response
	jsonErr := json.Unmarshal(body, &resp)
	if status < 200 || status > 299 {
		// gqlgen answers documents it cannot parse or validate with 422 and GraphQL errors;
		// anything else (a proxy, a wrong port) is quoted.
		detail := snippet(body)
		if jsonErr == nil && len(resp.Errors) > 0 {
			detail = errorList(resp.Errors)
		}
		return nil, fmt.Errorf("HTTP %d %s: %s", status, http.StatusText(status), detail)
	}
	if jsonErr != nil {
		return nil, fmt.Errorf("response is not GraphQL JSON (Content-Type %q): %v: %s", contentType, jsonErr, snippet(body))
	}
	if len(resp.Errors) > 0 {
		// Partial data is not used: intents is one list, and a list the server could not
		// finish would read as traffic that never happened.
		return nil, fmt.Errorf("GraphQL errors: %s", errorList(resp.Errors))
	}
	if resp.Data == nil || resp.Data.Intents == nil {
		return nil, fmt.Errorf("response has no data.intents: %s", snippet(body))
	}
	return *resp.Data.Intents, nil
}

func errorList(errs []gqlError) string {
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.String()
	}
	return strings.Join(msgs, "; ")
}

// snippet quotes the start of a body for an error message.
func snippet(body []byte) string {
	const max = 256
	b := bytes.TrimSpace(body)
	if len(b) == 0 {
		return "empty body"
	}
	if len(b) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(b[cut]) {
			cut--
		}
		return fmt.Sprintf("%q...", b[:cut])
	}
	return fmt.Sprintf("%q", b)
}
