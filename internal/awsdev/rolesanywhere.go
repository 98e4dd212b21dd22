package awsdev

type trustAnchor struct{}
type profile struct{}
