package mappertest

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"
)

// This file is a small GraphQL front end: a lexer and parser for one query operation, and a
// validator against the part of the network-mapper schema shadowgate may ask for. It exists
// so that the fake answers the query text a client really sends, the way gqlgen (the
// mapper's GraphQL server) would: fields, arguments and variables are checked against the
// schema, and a query the real mapper would refuse is refused here too.

// gqlError is one entry of a GraphQL response's "errors" array.
type gqlError struct {
	Message    string            `json:"message"`
	Locations  []gqlLocation     `json:"locations,omitempty"`
	Extensions map[string]string `json:"extensions,omitempty"`
}

type gqlLocation struct {
	Line   int `json:"line"`
	Column int `json:"column"`
}

// gqlgen's error codes for documents it cannot parse or validate; both are answered with
// HTTP 422.
const (
	codeParseFailed      = "GRAPHQL_PARSE_FAILED"
	codeValidationFailed = "GRAPHQL_VALIDATION_FAILED"
)

type tokenKind int

const (
	tokEOF tokenKind = iota
	tokPunct
	tokName
	tokNumber
	tokString
)

type token struct {
	kind tokenKind
	text string // punctuator, name, number literal, or the decoded string value
	loc  gqlLocation
}

// lex splits a GraphQL document into tokens. Whitespace, commas (insignificant in GraphQL)
// and comments are dropped.
func lex(src string) ([]token, *gqlError) {
	var toks []token
	line, lineStart := 1, 0
	loc := func(i int) gqlLocation { return gqlLocation{Line: line, Column: i - lineStart + 1} }
	fail := func(i int, format string, args ...any) *gqlError {
		return &gqlError{Message: "Syntax Error: " + fmt.Sprintf(format, args...), Locations: []gqlLocation{loc(i)},
			Extensions: map[string]string{"code": codeParseFailed}}
	}
	src = strings.TrimPrefix(src, "\ufeff")
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == '\n':
			i++
			line, lineStart = line+1, i
		case c == ' ' || c == '\t' || c == '\r' || c == ',':
			i++
		case c == '#':
			for i < len(src) && src[i] != '\n' {
				i++
			}
		case strings.IndexByte("!$&():=@[]{}|", c) >= 0:
			toks = append(toks, token{tokPunct, string(c), loc(i)})
			i++
		case strings.HasPrefix(src[i:], "..."):
			toks = append(toks, token{tokPunct, "...", loc(i)})
			i += 3
		case c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			j := i + 1
			for j < len(src) && (src[j] == '_' || src[j] >= 'a' && src[j] <= 'z' || src[j] >= 'A' && src[j] <= 'Z' || src[j] >= '0' && src[j] <= '9') {
				j++
			}
			toks = append(toks, token{tokName, src[i:j], loc(i)})
			i = j
		case c == '-' || c >= '0' && c <= '9':
			j := i + 1
			for j < len(src) && strings.IndexByte("0123456789.eE+-", src[j]) >= 0 {
				j++
			}
			toks = append(toks, token{tokNumber, src[i:j], loc(i)})
			i = j
		case c == '"':
			if strings.HasPrefix(src[i:], `"""`) {
				return nil, fail(i, "block strings are not supported by mappertest")
			}
			j := i + 1
			for j < len(src) && src[j] != '"' && src[j] != '\n' {
				if src[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(src) || src[j] != '"' {
				return nil, fail(i, "Unterminated string.")
			}
			var s string
			if err := json.Unmarshal([]byte(src[i:j+1]), &s); err != nil {
				return nil, fail(i, "Invalid string %s.", src[i:j+1])
			}
			toks = append(toks, token{tokString, s, loc(i)})
			i = j + 1
		default:
			r, _ := utf8.DecodeRuneInString(src[i:])
			return nil, fail(i, "Unexpected character %q.", r)
		}
	}
	return append(toks, token{kind: tokEOF, loc: loc(len(src))}), nil
}

// value is a GraphQL input value as written in the document.
type value struct {
	loc      gqlLocation
	variable string // set for $name
	null     bool
	str      *string
	boolean  *bool
	number   string
	enum     string
	list     []value
	isList   bool
	object   map[string]value
	isObject bool
}

type argument struct {
	name  string
	value value
	loc   gqlLocation
}

type selection struct {
	alias, name string
	args        []argument
	children    []*selection // nil for a leaf
	hasChildren bool
	loc         gqlLocation
}

// responseKey is the key the field's value has in the response.
func (s *selection) responseKey() string {
	if s.alias != "" {
		return s.alias
	}
	return s.name
}

type varDef struct {
	name string
	typ  string // canonical, e.g. "[String!]"
	loc  gqlLocation
}

type operation struct {
	name string
	vars []varDef
	sel  []*selection
}

type parser struct {
	toks []token
	pos  int
}

func (p *parser) peek() token { return p.toks[p.pos] }

func (p *parser) next() token {
	t := p.toks[p.pos]
	if t.kind != tokEOF {
		p.pos++
	}
	return t
}

func (p *parser) errAt(t token, format string, args ...any) *gqlError {
	return &gqlError{Message: "Syntax Error: " + fmt.Sprintf(format, args...), Locations: []gqlLocation{t.loc},
		Extensions: map[string]string{"code": codeParseFailed}}
}

func describe(t token) string {
	switch t.kind {
	case tokEOF:
		return "<EOF>"
	case tokString:
		return fmt.Sprintf("String %q", t.text)
	}
	return fmt.Sprintf("%q", t.text)
}

func (p *parser) expectPunct(s string) (token, *gqlError) {
	t := p.next()
	if t.kind != tokPunct || t.text != s {
		return t, p.errAt(t, "Expected %q, found %s.", s, describe(t))
	}
	return t, nil
}

func (p *parser) isPunct(s string) bool {
	t := p.peek()
	return t.kind == tokPunct && t.text == s
}

func (p *parser) name() (token, *gqlError) {
	t := p.next()
	if t.kind != tokName {
		return t, p.errAt(t, "Expected Name, found %s.", describe(t))
	}
	return t, nil
}

// parseDocument parses a document and returns the operation to run: the one named
// operationName, or the only one.
func parseDocument(src, operationName string) (*operation, *gqlError) {
	toks, err := lex(src)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks}
	var ops []*operation
	for p.peek().kind != tokEOF {
		t := p.peek()
		switch {
		case t.kind == tokPunct && t.text == "{":
			sel, err := p.selectionSet()
			if err != nil {
				return nil, err
			}
			ops = append(ops, &operation{sel: sel})
		case t.kind == tokName && t.text == "query":
			p.next()
			op, err := p.operation()
			if err != nil {
				return nil, err
			}
			ops = append(ops, op)
		case t.kind == tokName && (t.text == "mutation" || t.text == "subscription"):
			return nil, &gqlError{Message: fmt.Sprintf("mappertest serves queries only, not a %s", t.text),
				Locations: []gqlLocation{t.loc}, Extensions: map[string]string{"code": codeValidationFailed}}
		case t.kind == tokName && t.text == "fragment":
			return nil, p.errAt(t, "fragments are not supported by mappertest")
		default:
			return nil, p.errAt(t, "Unexpected %s.", describe(t))
		}
	}
	switch {
	case len(ops) == 0:
		return nil, &gqlError{Message: "Syntax Error: Unexpected <EOF>.", Extensions: map[string]string{"code": codeParseFailed}}
	case operationName != "":
		for _, op := range ops {
			if op.name == operationName {
				return op, nil
			}
		}
		return nil, &gqlError{Message: fmt.Sprintf("operation %s not found", operationName),
			Extensions: map[string]string{"code": codeValidationFailed}}
	case len(ops) > 1:
		return nil, &gqlError{Message: "operation name is required when a document has several operations",
			Extensions: map[string]string{"code": codeValidationFailed}}
	}
	return ops[0], nil
}

func (p *parser) operation() (*operation, *gqlError) {
	op := &operation{}
	if p.peek().kind == tokName {
		op.name = p.next().text
	}
	if p.isPunct("(") {
		p.next()
		for !p.isPunct(")") {
			dollar, err := p.expectPunct("$")
			if err != nil {
				return nil, err
			}
			n, err := p.name()
			if err != nil {
				return nil, err
			}
			if _, err := p.expectPunct(":"); err != nil {
				return nil, err
			}
			typ, err := p.typeRef()
			if err != nil {
				return nil, err
			}
			if p.isPunct("=") {
				return nil, p.errAt(p.peek(), "variable default values are not supported by mappertest")
			}
			op.vars = append(op.vars, varDef{name: n.text, typ: typ, loc: dollar.loc})
		}
		p.next()
	}
	if p.isPunct("@") {
		return nil, p.errAt(p.peek(), "directives are not supported by mappertest")
	}
	sel, err := p.selectionSet()
	if err != nil {
		return nil, err
	}
	op.sel = sel
	return op, nil
}

func (p *parser) typeRef() (string, *gqlError) {
	var typ string
	if p.isPunct("[") {
		p.next()
		inner, err := p.typeRef()
		if err != nil {
			return "", err
		}
		if _, err := p.expectPunct("]"); err != nil {
			return "", err
		}
		typ = "[" + inner + "]"
	} else {
		n, err := p.name()
		if err != nil {
			return "", err
		}
		typ = n.text
	}
	if p.isPunct("!") {
		p.next()
		typ += "!"
	}
	return typ, nil
}

func (p *parser) selectionSet() ([]*selection, *gqlError) {
	if _, err := p.expectPunct("{"); err != nil {
		return nil, err
	}
	var out []*selection
	for !p.isPunct("}") {
		if p.isPunct("...") {
			return nil, p.errAt(p.peek(), "fragments are not supported by mappertest")
		}
		n, err := p.name()
		if err != nil {
			return nil, err
		}
		s := &selection{name: n.text, loc: n.loc}
		if p.isPunct(":") {
			p.next()
			real, err := p.name()
			if err != nil {
				return nil, err
			}
			s.alias, s.name = n.text, real.text
		}
		if p.isPunct("(") {
			p.next()
			for !p.isPunct(")") {
				an, err := p.name()
				if err != nil {
					return nil, err
				}
				if _, err := p.expectPunct(":"); err != nil {
					return nil, err
				}
				v, err := p.value()
				if err != nil {
					return nil, err
				}
				s.args = append(s.args, argument{name: an.text, value: v, loc: an.loc})
			}
			p.next()
		}
		if p.isPunct("@") {
			return nil, p.errAt(p.peek(), "directives are not supported by mappertest")
		}
		if p.isPunct("{") {
			children, err := p.selectionSet()
			if err != nil {
				return nil, err
			}
			s.children, s.hasChildren = children, true
		}
		out = append(out, s)
	}
	p.next()
	if len(out) == 0 {
		return nil, p.errAt(p.toks[p.pos-1], "Expected Name, found \"}\".")
	}
	return out, nil
}

func (p *parser) value() (value, *gqlError) {
	t := p.next()
	v := value{loc: t.loc}
	switch {
	case t.kind == tokPunct && t.text == "$":
		n, err := p.name()
		if err != nil {
			return v, err
		}
		v.variable = n.text
	case t.kind == tokPunct && t.text == "[":
		v.isList = true
		for !p.isPunct("]") {
			if p.peek().kind == tokEOF {
				return v, p.errAt(p.peek(), "Expected \"]\", found <EOF>.")
			}
			item, err := p.value()
			if err != nil {
				return v, err
			}
			v.list = append(v.list, item)
		}
		p.next()
	case t.kind == tokPunct && t.text == "{":
		v.isObject, v.object = true, map[string]value{}
		for !p.isPunct("}") {
			n, err := p.name()
			if err != nil {
				return v, err
			}
			if _, err := p.expectPunct(":"); err != nil {
				return v, err
			}
			item, err := p.value()
			if err != nil {
				return v, err
			}
			v.object[n.text] = item
		}
		p.next()
	case t.kind == tokString:
		s := t.text
		v.str = &s
	case t.kind == tokNumber:
		v.number = t.text
	case t.kind == tokName && (t.text == "true" || t.text == "false"):
		b := t.text == "true"
		v.boolean = &b
	case t.kind == tokName && t.text == "null":
		v.null = true
	case t.kind == tokName:
		v.enum = t.text
	default:
		return v, p.errAt(t, "Unexpected %s.", describe(t))
	}
	return v, nil
}

// The schema: the types of the network-mapper's Query.intents and Query.health fields, as
// in otterize/network-mapper src/mappergraphql/schema.graphql.

type fieldDef struct {
	typ  string            // canonical type, e.g. "[Intent!]!"
	args map[string]string // argument name → canonical type
}

var schema = map[string]map[string]fieldDef{
	"Query": {
		"intents": {typ: "[Intent!]!", args: map[string]string{
			"namespaces": "[String!]", "includeLabels": "[String!]", "excludeServiceWithLabels": "[String!]",
			"includeAllLabels": "Boolean", "server": "ServerFilter",
		}},
		"health": {typ: "Boolean!"},
	},
	"Intent": {
		"client": {typ: "OtterizeServiceIdentity!"}, "server": {typ: "OtterizeServiceIdentity!"},
		"type": {typ: "IntentType"}, "resolutionData": {typ: "String"}, "kafkaTopics": {typ: "[KafkaConfig!]"},
		"httpResources": {typ: "[HttpResource!]"}, "awsActions": {typ: "[String!]"},
	},
	"OtterizeServiceIdentity": {
		"name": {typ: "String!"}, "namespace": {typ: "String!"}, "labels": {typ: "[PodLabel!]"},
		"resolutionData": {typ: "IdentityResolutionData"}, "podOwnerKind": {typ: "GroupVersionKind"},
		"kubernetesService": {typ: "String"},
	},
	"GroupVersionKind":       {"group": {typ: "String"}, "version": {typ: "String!"}, "kind": {typ: "String!"}},
	"PodLabel":               {"key": {typ: "String!"}, "value": {typ: "String!"}},
	"KafkaConfig":            {"name": {typ: "String!"}, "operations": {typ: "[KafkaOperation!]"}},
	"HttpResource":           {"path": {typ: "String!"}, "methods": {typ: "[HttpMethod!]"}},
	"IdentityResolutionData": {"host": {typ: "String"}, "podHostname": {typ: "String"}, "procfsHostname": {typ: "String"}, "port": {typ: "Int"}, "isService": {typ: "Boolean"}, "uptime": {typ: "String"}, "lastSeen": {typ: "String"}, "extraInfo": {typ: "String"}, "hasLinkerdSidecar": {typ: "Boolean"}},
}

// inputObjects are the input types an argument may take, with their fields.
var inputObjects = map[string]map[string]string{
	"ServerFilter": {"name": "String!", "namespace": "String!"},
}

// namedType strips list and non-null wrappers: "[Intent!]!" → "Intent".
func namedType(typ string) string { return strings.Trim(typ, "[]!") }

// validate checks op against the schema and the variables sent with it, the way a GraphQL
// server validates a document before running it.
func validate(op *operation, vars map[string]json.RawMessage) []gqlError {
	v := &validator{defs: map[string]varDef{}, used: map[string]bool{}}
	for _, d := range op.vars {
		if _, dup := v.defs[d.name]; dup {
			v.fail(d.loc, "There can be only one variable named \"$%s\".", d.name)
		}
		v.defs[d.name] = d
		if _, ok := schema[namedType(d.typ)]; ok {
			v.fail(d.loc, "Variable \"$%s\" cannot be non-input type \"%s\".", d.name, d.typ)
		}
	}
	v.selections("Query", op.sel)
	for _, d := range op.vars {
		if !v.used[d.name] {
			v.fail(d.loc, "Variable \"$%s\" is never used.", d.name)
		}
		raw, sent := vars[d.name]
		if !sent || string(raw) == "null" {
			if strings.HasSuffix(d.typ, "!") {
				v.fail(d.loc, "Variable \"$%s\" of required type \"%s\" was not provided.", d.name, d.typ)
			}
			continue
		}
		if msg := checkJSON(d.typ, raw); msg != "" {
			v.fail(d.loc, "Variable \"$%s\" got invalid value %s; %s", d.name, raw, msg)
		}
	}
	return v.errs
}

type validator struct {
	defs map[string]varDef
	used map[string]bool
	errs []gqlError
}

func (v *validator) fail(loc gqlLocation, format string, args ...any) {
	v.errs = append(v.errs, gqlError{Message: fmt.Sprintf(format, args...), Locations: []gqlLocation{loc},
		Extensions: map[string]string{"code": codeValidationFailed}})
}

func (v *validator) selections(typeName string, sels []*selection) {
	fields := schema[typeName]
	keys := map[string]*selection{}
	for _, s := range sels {
		if prev, ok := keys[s.responseKey()]; ok && prev.name != s.name {
			v.fail(s.loc, "Fields \"%s\" conflict because %s and %s are different fields.", s.responseKey(), prev.name, s.name)
		}
		keys[s.responseKey()] = s
		if s.name == "__typename" {
			if s.hasChildren || len(s.args) > 0 {
				v.fail(s.loc, "Field \"__typename\" must not have a selection since type \"String!\" has no subfields.")
			}
			continue
		}
		def, ok := fields[s.name]
		if !ok {
			v.fail(s.loc, "Cannot query field \"%s\" on type \"%s\".", s.name, typeName)
			continue
		}
		for _, a := range s.args {
			at, ok := def.args[a.name]
			if !ok {
				v.fail(a.loc, "Unknown argument \"%s\" on field \"%s.%s\".", a.name, typeName, s.name)
				continue
			}
			v.argValue(at, a.value)
		}
		child := namedType(def.typ)
		_, object := schema[child]
		switch {
		case object && !s.hasChildren:
			v.fail(s.loc, "Field \"%s\" of type \"%s\" must have a selection of subfields. Did you mean \"%s { ... }\"?", s.name, def.typ, s.name)
		case !object && s.hasChildren:
			v.fail(s.loc, "Field \"%s\" must not have a selection since type \"%s\" has no subfields.", s.name, def.typ)
		case object:
			v.selections(child, s.children)
		}
	}
}

// argValue checks a literal or variable against the argument type want.
func (v *validator) argValue(want string, val value) {
	if val.variable != "" {
		v.used[val.variable] = true
		d, ok := v.defs[val.variable]
		if !ok {
			v.fail(val.loc, "Variable \"$%s\" is not defined.", val.variable)
			return
		}
		// A variable fits where its type is the argument's type, or a non-null version of it.
		if d.typ != want && strings.TrimSuffix(d.typ, "!") != want {
			v.fail(val.loc, "Variable \"$%s\" of type \"%s\" used in position expecting type \"%s\".", val.variable, d.typ, want)
		}
		return
	}
	if msg := checkLiteral(want, val); msg != "" {
		v.fail(val.loc, "%s", msg)
	}
}

func checkLiteral(want string, val value) string {
	if val.null {
		if strings.HasSuffix(want, "!") {
			return fmt.Sprintf("Expected value of type \"%s\", found null.", want)
		}
		return ""
	}
	t := strings.TrimSuffix(want, "!")
	if strings.HasPrefix(t, "[") {
		inner := t[1 : len(t)-1]
		if !val.isList {
			return checkLiteral(inner, val) // input coercion: a single value is a list of one
		}
		for _, item := range val.list {
			if msg := checkLiteral(inner, item); msg != "" {
				return msg
			}
		}
		return ""
	}
	switch t {
	case "String":
		if val.str == nil {
			return fmt.Sprintf("Expected value of type \"%s\", found %s.", want, val.describe())
		}
	case "Boolean":
		if val.boolean == nil {
			return fmt.Sprintf("Expected value of type \"%s\", found %s.", want, val.describe())
		}
	default:
		fields, ok := inputObjects[t]
		if !ok || !val.isObject {
			return fmt.Sprintf("Expected value of type \"%s\", found %s.", want, val.describe())
		}
		for name := range val.object {
			if _, ok := fields[name]; !ok {
				return fmt.Sprintf("Field \"%s\" is not defined by type \"%s\".", name, t)
			}
		}
		for name, ft := range fields {
			fv, ok := val.object[name]
			if !ok {
				if strings.HasSuffix(ft, "!") {
					return fmt.Sprintf("Field \"%s.%s\" of required type \"%s\" was not provided.", t, name, ft)
				}
				continue
			}
			if msg := checkLiteral(ft, fv); msg != "" {
				return msg
			}
		}
	}
	return ""
}

func (val value) describe() string {
	switch {
	case val.str != nil:
		return fmt.Sprintf("%q", *val.str)
	case val.boolean != nil:
		return fmt.Sprint(*val.boolean)
	case val.number != "":
		return val.number
	case val.enum != "":
		return val.enum
	case val.isList:
		return "a list"
	case val.isObject:
		return "an object"
	}
	return "null"
}

// checkJSON checks a variable's JSON value against its declared type; it returns "" when
// the value fits.
func checkJSON(typ string, raw json.RawMessage) string {
	var x any
	if err := json.Unmarshal(raw, &x); err != nil {
		return err.Error()
	}
	return checkAny(typ, x)
}

func checkAny(typ string, x any) string {
	if x == nil {
		if strings.HasSuffix(typ, "!") {
			return fmt.Sprintf("Expected non-nullable type \"%s\" not to be null.", typ)
		}
		return ""
	}
	t := strings.TrimSuffix(typ, "!")
	if strings.HasPrefix(t, "[") {
		inner := t[1 : len(t)-1]
		list, ok := x.([]any)
		if !ok {
			return checkAny(inner, x)
		}
		for _, item := range list {
			if msg := checkAny(inner, item); msg != "" {
				return msg
			}
		}
		return ""
	}
	switch t {
	case "String":
		if _, ok := x.(string); !ok {
			return fmt.Sprintf("String cannot represent a non string value: %v", x)
		}
	case "Boolean":
		if _, ok := x.(bool); !ok {
			return fmt.Sprintf("Boolean cannot represent a non boolean value: %v", x)
		}
	default:
		fields, ok := inputObjects[t]
		obj, isObj := x.(map[string]any)
		if !ok || !isObj {
			return fmt.Sprintf("Expected type \"%s\" to be an object.", t)
		}
		for name := range obj {
			if _, ok := fields[name]; !ok {
				return fmt.Sprintf("Field \"%s\" is not defined by type \"%s\".", name, t)
			}
		}
		for name, ft := range fields {
			if msg := checkAny(ft, obj[name]); msg != "" {
				return msg
			}
		}
	}
	return ""
}
