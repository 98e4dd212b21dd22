package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/rolesenv/rolesenv/inject"
	"github.com/rolesenv/rolesenv/internal/check"
	"github.com/rolesenv/rolesenv/internal/secretfiles"
)

// fileOptions adds check's --template files and the secrets directory to
// opts, with a failed row for a template that cannot be read.
func (c *checker) fileOptions(opts *inject.Options) {
	sink := c.a.newFileSink(c.ff, nil)
	opts.FilePath = func(name string) string { return sink.Join(name) }
	specs, err := parseTemplates(c.ff.templates)
	if err != nil {
		c.add(check.Local, check.Row{Check: "templates", Status: check.Fail, Detail: err.Error()})
		return
	}
	for _, t := range specs {
		data, err := readTemplate(t.src, -1)
		if err != nil {
			var te *templateSrcError
			errors.As(err, &te)
			c.add(check.Local, check.Row{Check: "template " + t.src, Status: check.Fail, File: t.src, Detail: te.why, Hint: te.Hint()})
			continue
		}
		opts.Templates = append(opts.Templates, inject.TemplateFile{Name: t.src, Dest: t.dest, Mode: t.mode, Data: data})
	}
}

// templateRows are the rows of the templates that were read: their
// errors, or read and parsed; shown gets their names.
func (c *checker) templateRows(templates []inject.TemplateFile, parseErrs []error, shown map[string]bool) {
	for _, tf := range templates {
		shown[tf.Name] = true
		label := "template " + tf.Name
		bad := false
		for _, e := range parseErrs {
			var re *inject.ResolveError
			if errors.As(e, &re) && re.File == tf.Name && re.Ref == "" {
				bad = true
				c.add(check.Local, check.Row{Check: label, Status: check.Fail, File: tf.Name, Line: re.Line, Detail: templateError(re)})
			}
		}
		if !bad {
			c.add(check.Local, check.Row{Check: label, Status: check.OK, File: tf.Name, Detail: "read and parsed; renders to " + tf.Dest})
		}
	}
}

// secretsDirRow checks where run would write files, when it would write
// any.
func (c *checker) secretsDirRow() {
	if len(c.ff.templates) == 0 && (c.tm == nil || len(c.tm.FileNames()) == 0) {
		return
	}
	path, memory, err := secretfiles.Inspect(secretfiles.Options{Dir: c.ff.secretsDir})
	r := check.Row{Check: "secrets directory", Status: check.OK, Detail: path + ": usable, on a memory file system"}
	switch {
	case err != nil:
		r.Status, r.Detail = check.Fail, err.Error()
		r.Hint = (&secretsDirError{}).Hint()
	case !memory:
		r.Status, r.Detail = check.Warn, fmt.Sprintf("%s: not on a memory file system (tmpfs or ramfs): secret files may reach a disk", path)
	}
	c.add(check.Local, r)
}

// Join is the path of a file of the planned directory.
func (s *fileSink) Join(name string) string { return s.path() + string(os.PathSeparator) + name }
