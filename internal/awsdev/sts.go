package awsdev

import "encoding/xml"

// STS GetCallerIdentity (query protocol, XML answers).

const stsNamespace = "https://sts.amazonaws.com/doc/2011-06-15/"

func init() {
	register("sts:GetCallerIdentity", (*Server).stsGetCallerIdentity)
}

type stsGetCallerIdentityResponse struct {
	XMLName  xml.Name                   `xml:"GetCallerIdentityResponse"`
	Xmlns    string                     `xml:"xmlns,attr"`
	Result   stsGetCallerIdentityResult `xml:"GetCallerIdentityResult"`
	Metadata stsResponseMetadata        `xml:"ResponseMetadata"`
}

type stsGetCallerIdentityResult struct {
	Arn     string `xml:"Arn"`
	UserId  string `xml:"UserId"`
	Account string `xml:"Account"`
}

type stsResponseMetadata struct {
	RequestID string `xml:"RequestId"`
}

// stsGetCallerIdentity needs no permission, as in AWS.
func (s *Server) stsGetCallerIdentity(c *call) (any, *apiError) {
	return stsGetCallerIdentityResponse{
		Xmlns:    stsNamespace,
		Result:   stsGetCallerIdentityResult{Arn: c.who.arn, UserId: c.who.userID, Account: s.accountID},
		Metadata: stsResponseMetadata{RequestID: c.requestID},
	}, nil
}
