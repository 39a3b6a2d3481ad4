package policies_test

import (
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/runtime"

	"podguard.dev/podguard/policies/change"
)

type resourceQuantity = resource.Quantity
type changeT = change.Change

func mustQuantity(s string) resource.Quantity { return resource.MustParse(s) }

type runtimeObject = runtime.Object

func jsonPatch(c []change.Change) ([]byte, error) { return change.JSONPatch(c) }
