package console

import (
	"html/template"
	"strings"
)

var pageNames = []string{"login", "codes", "new", "code", "archive", "drift", "error", "campaigns", "campaign"}

var funcs = template.FuncMap{
	"upper": strings.ToUpper,
	"deref": func(s *string) string {
		if s == nil {
			return ""
		}
		return *s
	},
	"date": func(s string) string {
		if len(s) >= 16 {
			return strings.Replace(s[:16], "T", " ", 1)
		}
		return s
	},
	"datep": func(s *string) string {
		if s == nil || len(*s) < 16 {
			return "—"
		}
		return strings.Replace((*s)[:16], "T", " ", 1)
	},
	"checked": func(v string) bool { return v == "on" },
	"money":   func(v int64, cur string) string { return formatMinor(v, cur) + " " + strings.ToUpper(cur) },
	// args pairs a form with one field name for the "ferr" template.
	"args": func(f formContent, name string) fieldArgs { return fieldArgs{Errors: f.Errors, Name: name} },
}

type fieldArgs struct {
	Errors map[string]string
	Name   string
}

// parsePages parses each page with the shared layout; a template error is a
// programming error caught by the tests.
func parsePages() map[string]*template.Template {
	pages := map[string]*template.Template{}
	for _, name := range pageNames {
		pages[name] = template.Must(template.New(name).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html"))
	}
	return pages
}
