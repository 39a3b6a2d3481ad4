package policies_test

import (
	"k8s.io/apimachinery/pkg/api/resource"

	"podguard.dev/podguard/policies/change"
)

type resourceQuantity = resource.Quantity
type changeT = change.Change

func mustQuantity(s string) resource.Quantity { return resource.MustParse(s) }
