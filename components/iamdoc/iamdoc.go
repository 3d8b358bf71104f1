// Package iamdoc builds IAM policy documents as JSON in Go, so that they are
// plain data a test can read, with no provider call (iam.GetPolicyDocument)
// needed at plan time.
package iamdoc

import (
	"encoding/json"
	"fmt"
)

// Document is an IAM policy document.
type Document struct {
	Version   string      `json:"Version"`
	Statement []Statement `json:"Statement"`
}

// Statement is one statement. Fields follow the IAM grammar; a one-element
// Action or Resource is still written as a list, which IAM accepts.
type Statement struct {
	Sid       string                    `json:"Sid,omitempty"`
	Effect    string                    `json:"Effect"`
	Principal map[string]any            `json:"Principal,omitempty"`
	Action    []string                  `json:"Action"`
	Resource  []string                  `json:"Resource,omitempty"`
	Condition map[string]map[string]any `json:"Condition,omitempty"`
}

// New returns a document with the current policy language version.
func New(statements ...Statement) Document {
	return Document{Version: "2012-10-17", Statement: statements}
}

// Allow is an Allow statement.
func Allow(sid string, actions, resources []string) Statement {
	return Statement{Sid: sid, Effect: "Allow", Action: actions, Resource: resources}
}

// JSON renders the document. It panics only on a programming error (a
// condition value that cannot be marshalled).
func (d Document) JSON() string {
	b, err := json.Marshal(d)
	if err != nil {
		panic(fmt.Sprintf("iamdoc: marshal policy: %v", err))
	}
	return string(b)
}

// AssumeRole is a trust policy letting the given service principals assume
// a role.
func AssumeRole(servicePrincipals []string) Document {
	var principal any = servicePrincipals
	if len(servicePrincipals) == 1 {
		principal = servicePrincipals[0]
	}
	return New(Statement{
		Effect:    "Allow",
		Principal: map[string]any{"Service": principal},
		Action:    []string{"sts:AssumeRole"},
	})
}
