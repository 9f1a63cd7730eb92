package main

import (
	_ "github.com/cilium/cilium/api/v1/flow"
	_ "github.com/cilium/cilium/api/v1/observer"
	_ "github.com/google/go-cmp/cmp"
	_ "github.com/shadowgate/shadowgate/evaluator/cluster"
	_ "github.com/spf13/cobra"
	_ "github.com/spf13/viper"
	_ "google.golang.org/grpc"
	_ "google.golang.org/protobuf/encoding/protojson"
	_ "k8s.io/api/apps/v1"
	_ "k8s.io/api/batch/v1"
	_ "k8s.io/api/core/v1"
	_ "k8s.io/api/networking/v1"
	_ "k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	_ "k8s.io/apimachinery/pkg/labels"
	_ "k8s.io/utils/clock/testing"
	_ "sigs.k8s.io/yaml"
)

func main() {}
