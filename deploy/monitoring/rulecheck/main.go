// rulecheck validates Prometheus rule files as Prometheus itself loads them (rule
// syntax, templates and PromQL), without a Prometheus server: the check `promtool check
// rules` makes, from the same packages. Usage: rulecheck FILE...
package main

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
)

func main() {
	failed := false
	for _, path := range os.Args[1:] {
		groups, errs := rulefmt.ParseFile(
			path, false, model.UTF8Validation, parser.NewParser(parser.Options{}), slog.Default(),
		)
		for _, err := range errs {
			fmt.Fprintf(os.Stderr, "%s: %v\n", path, err)
			failed = true
		}
		if groups != nil {
			rules := 0
			for _, group := range groups.Groups {
				rules += len(group.Rules)
			}
			fmt.Printf("%s: %d groups, %d rules\n", path, len(groups.Groups), rules)
		}
	}
	if failed {
		os.Exit(1)
	}
}
