// Command promql-selectors prints the metric names each PromQL expression selects, with Prometheus's own parser,
// so a test can check alert and dashboard expressions against what the operator's /metrics really exports.
//
// Input (stdin): a JSON array of expressions. Output (stdout): a JSON array, one entry per expression, in order:
// {"selectors": [{"metric": "name", "labels": ["label", ...]}, ...]} — each vector or matrix selector with a metric
// name, in the order written, with the label names its matchers test — or {"error": "what the parser said"}.
// Exit status 0 unless the input is not a JSON array of strings.
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

type selector struct {
	Metric string   `json:"metric"`
	Labels []string `json:"labels"`
}

type result struct {
	Selectors []selector `json:"selectors,omitempty"`
	Error     string     `json:"error,omitempty"`
}

func main() {
	var exprs []string
	if err := json.NewDecoder(os.Stdin).Decode(&exprs); err != nil {
		fmt.Fprintf(os.Stderr, "promql-selectors: stdin must be a JSON array of PromQL expressions: %v\n", err)
		os.Exit(2)
	}
	p := parser.NewParser(parser.Options{})
	out := make([]result, 0, len(exprs))
	for _, text := range exprs {
		expr, err := p.ParseExpr(text)
		if err != nil {
			out = append(out, result{Error: err.Error()})
			continue
		}
		var found []selector
		parser.Inspect(expr, func(node parser.Node, _ []parser.Node) error {
			if vs, ok := node.(*parser.VectorSelector); ok {
				if name := selectedName(vs); name != "" {
					found = append(found, selector{Metric: name, Labels: matchedLabels(vs)})
				}
			}
			return nil
		})
		out = append(out, result{Selectors: found})
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		fmt.Fprintf(os.Stderr, "promql-selectors: %v\n", err)
		os.Exit(1)
	}
}

// selectedName is the metric name a selector asks for: its name, or an equality matcher on __name__.
func selectedName(vs *parser.VectorSelector) string {
	if vs.Name != "" {
		return vs.Name
	}
	for _, m := range vs.LabelMatchers {
		if m.Name == labels.MetricName && m.Type == labels.MatchEqual {
			return m.Value
		}
	}
	return ""
}

// matchedLabels are the label names a selector's matchers test, __name__ aside.
func matchedLabels(vs *parser.VectorSelector) []string {
	names := []string{}
	for _, m := range vs.LabelMatchers {
		if m.Name != labels.MetricName {
			names = append(names, m.Name)
		}
	}
	return names
}
