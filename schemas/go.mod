module github.com/verdictlabs/verdict/schemas

go 1.26
