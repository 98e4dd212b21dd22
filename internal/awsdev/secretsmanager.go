package awsdev

import (
	"slices"
	"sort"
	"strings"
	"time"
)

// Secrets Manager operations (JSON 1.1, X-Amz-Target secretsmanager.*).

func init() {
	register("secretsmanager:CreateSecret", jsonOp((*Region).smCreateSecret))
	register("secretsmanager:GetSecretValue", jsonOp((*Region).smGetSecretValue))
	register("secretsmanager:BatchGetSecretValue", jsonOp((*Region).smBatchGetSecretValue))
	register("secretsmanager:DescribeSecret", jsonOp((*Region).smDescribeSecret))
	register("secretsmanager:PutSecretValue", jsonOp((*Region).smPutSecretValue))
	register("secretsmanager:UpdateSecretVersionStage", jsonOp((*Region).smUpdateSecretVersionStage))
	register("secretsmanager:ListSecretVersionIds", jsonOp((*Region).smListSecretVersionIds))
	register("secretsmanager:ListSecrets", jsonOp((*Region).smListSecrets))
	register("secretsmanager:DeleteSecret", jsonOp((*Region).smDeleteSecret))
	register("secretsmanager:RestoreSecret", jsonOp((*Region).smRestoreSecret))
}

const (
	msgSecretNotFound = "Secrets Manager can't find the specified secret."
	msgSecretDeleted  = "You can't perform this operation on the secret because it was marked for deletion."
)

// smSecret finds the secret a request names and authorises action on it.
// r.s.mu is held. A secret scheduled for deletion is returned; callers that
// need a live secret check deleted().
func (r *Region) smSecret(c *call, id string) (*secret, *apiError) {
	if id == "" {
		return nil, errValidation("1 validation error detected: Value null at 'secretId' failed to satisfy constraint: Member must not be null")
	}
	if len(id) > 2048 {
		return nil, lengthError("secretId", 2048)
	}
	sec := r.findSecret(id)
	if aerr := r.authorize(c.who, c.op, r.secretResource(id, sec)); aerr != nil {
		return nil, aerr
	}
	if sec == nil {
		return nil, errSMNotFound(msgSecretNotFound)
	}
	return sec, nil
}

func (r *Region) liveSecret(c *call, id string) (*secret, *apiError) {
	sec, aerr := r.smSecret(c, id)
	if aerr != nil {
		return nil, aerr
	}
	if sec.deleted() {
		return nil, errInvalidRequest(msgSecretDeleted)
	}
	return sec, nil
}

type smCreateSecretInput struct {
	Name               string
	ClientRequestToken string
	Description        string
	KmsKeyId           string
	SecretString       *string
	SecretBinary       []byte
	Tags               []smTag
}

type smNameOutput struct {
	ARN           string   `json:"ARN"`
	Name          string   `json:"Name"`
	VersionId     string   `json:"VersionId,omitempty"`
	VersionStages []string `json:"VersionStages,omitempty"`
	DeletionDate  *epoch   `json:"DeletionDate,omitempty"`
}

func (r *Region) smCreateSecret(c *call, in *smCreateSecretInput) (any, *apiError) {
	if in.Name == "" {
		return nil, errValidation("1 validation error detected: Value null at 'name' failed to satisfy constraint: Member must not be null")
	}
	if aerr := r.authorize(c.who, c.op, r.secretARNPrefix()+in.Name); aerr != nil {
		return nil, aerr
	}
	sec, ver, aerr := r.createSecret(in.Name, in.ClientRequestToken, secretValue{str: in.SecretString, bin: in.SecretBinary}, in.Description, in.KmsKeyId, in.Tags)
	if aerr != nil {
		return nil, aerr
	}
	out := smNameOutput{ARN: sec.arn, Name: sec.name}
	if ver != nil {
		out.VersionId = ver.id
	}
	return out, nil
}

type smGetSecretValueInput struct {
	SecretId     string
	VersionId    string
	VersionStage string
}

type smSecretValue struct {
	ARN           string   `json:"ARN"`
	Name          string   `json:"Name"`
	VersionId     string   `json:"VersionId"`
	SecretString  *string  `json:"SecretString,omitempty"`
	SecretBinary  []byte   `json:"SecretBinary,omitempty"`
	VersionStages []string `json:"VersionStages"`
	CreatedDate   *epoch   `json:"CreatedDate,omitempty"`
}

func (r *Region) smGetSecretValue(c *call, in *smGetSecretValueInput) (any, *apiError) {
	sec, aerr := r.liveSecret(c, in.SecretId)
	if aerr != nil {
		return nil, aerr
	}
	ver, aerr := selectVersion(sec, in.VersionId, in.VersionStage)
	if aerr != nil {
		return nil, aerr
	}
	return r.secretValueOf(sec, ver), nil
}

// selectVersion picks a version by id and/or stage (AWSCURRENT by default).
func selectVersion(sec *secret, versionID, stage string) (*secretVersion, *apiError) {
	if versionID != "" {
		ver := sec.version(versionID)
		if ver == nil {
			return nil, errSMNotFound("Secrets Manager can't find the specified secret value for VersionId: %s", versionID)
		}
		if stage != "" && !slices.Contains(ver.stages, stage) {
			return nil, errInvalidRequest("You provided a VersionStage that is not associated to the provided VersionId.")
		}
		return ver, nil
	}
	if stage == "" {
		stage = stageCurrent
	}
	ver := sec.holder(stage)
	if ver == nil {
		return nil, errSMNotFound("Secrets Manager can't find the specified secret value for staging label: %s", stage)
	}
	return ver, nil
}

// secretValueOf answers a read of ver, and records the access (AWS keeps
// the date only).
func (r *Region) secretValueOf(sec *secret, ver *secretVersion) smSecretValue {
	day := r.now().UTC().Truncate(24 * time.Hour)
	sec.lastAccessed, ver.lastAccessed = day, day
	return smSecretValue{
		ARN: sec.arn, Name: sec.name, VersionId: ver.id,
		SecretString: ver.str, SecretBinary: ver.bin,
		VersionStages: slices.Clone(ver.stages), CreatedDate: epochPtr(ver.created),
	}
}

type smFilter struct {
	Key    string
	Values []string
}

type smBatchGetInput struct {
	SecretIdList []string
	Filters      []smFilter
	MaxResults   int
	NextToken    string
}

type smBatchError struct {
	SecretId  string `json:"SecretId"`
	ErrorCode string `json:"ErrorCode"`
	Message   string `json:"Message"`
}

type smBatchGetOutput struct {
	SecretValues []smSecretValue `json:"SecretValues"`
	Errors       []smBatchError  `json:"Errors"`
	NextToken    string          `json:"NextToken,omitempty"`
}

func (r *Region) smBatchGetSecretValue(c *call, in *smBatchGetInput) (any, *apiError) {
	if (in.SecretIdList == nil) == (in.Filters == nil) {
		return nil, errInvalidParameter("Either SecretIdList or Filters must be specified, but not both.")
	}
	if len(in.SecretIdList) > 20 {
		return nil, lengthError("secretIdList", 20)
	}
	if aerr := r.authorize(c.who, c.op, "*"); aerr != nil {
		return nil, aerr
	}
	out := smBatchGetOutput{SecretValues: []smSecretValue{}, Errors: []smBatchError{}}
	ids := in.SecretIdList
	if in.Filters != nil {
		if aerr := r.authorize(c.who, "secretsmanager:ListSecrets", "*"); aerr != nil {
			return nil, aerr
		}
		if in.MaxResults > 20 {
			return nil, errInvalidParameter("MaxResults must be at most 20 when Filters are used.")
		}
		matched, aerr := r.filterSecrets(in.Filters, false)
		if aerr != nil {
			return nil, aerr
		}
		page, next, aerr := paginate(matched, in.NextToken, in.MaxResults, 20)
		if aerr != nil {
			return nil, aerr
		}
		out.NextToken = next
		ids = nil
		for _, sec := range page {
			ids = append(ids, sec.arn)
		}
	}
	for _, id := range ids {
		sec := r.findSecret(id)
		aerr := r.authorize(c.who, "secretsmanager:GetSecretValue", r.secretResource(id, sec))
		var ver *secretVersion
		switch {
		case aerr != nil:
		case sec == nil:
			aerr = errSMNotFound(msgSecretNotFound)
		case sec.deleted():
			aerr = errInvalidRequest(msgSecretDeleted)
		default:
			ver, aerr = selectVersion(sec, "", stageCurrent)
		}
		if aerr != nil {
			out.Errors = append(out.Errors, smBatchError{SecretId: id, ErrorCode: aerr.code, Message: aerr.message})
			continue
		}
		out.SecretValues = append(out.SecretValues, r.secretValueOf(sec, ver))
	}
	return out, nil
}

type smSecretIDInput struct {
	SecretId string
}

type smDescribeOutput struct {
	ARN                string              `json:"ARN"`
	Name               string              `json:"Name"`
	Description        string              `json:"Description,omitempty"`
	KmsKeyId           string              `json:"KmsKeyId,omitempty"`
	RotationEnabled    bool                `json:"RotationEnabled"`
	LastChangedDate    *epoch              `json:"LastChangedDate,omitempty"`
	LastAccessedDate   *epoch              `json:"LastAccessedDate,omitempty"`
	DeletedDate        *epoch              `json:"DeletedDate,omitempty"`
	CreatedDate        *epoch              `json:"CreatedDate,omitempty"`
	Tags               []smTag             `json:"Tags,omitempty"`
	VersionIdsToStages map[string][]string `json:"VersionIdsToStages,omitempty"`
	PrimaryRegion      string              `json:"PrimaryRegion,omitempty"`
}

func (r *Region) describe(sec *secret) smDescribeOutput {
	return smDescribeOutput{
		ARN: sec.arn, Name: sec.name, Description: sec.description, KmsKeyId: sec.kmsKeyID,
		LastChangedDate: epochPtr(sec.lastChanged), LastAccessedDate: epochPtr(sec.lastAccessed),
		DeletedDate: epochPtr(sec.deletedAt), CreatedDate: epochPtr(sec.created),
		Tags: sec.tags, VersionIdsToStages: sec.versionIDsToStages(),
	}
}

func (r *Region) smDescribeSecret(c *call, in *smSecretIDInput) (any, *apiError) {
	sec, aerr := r.smSecret(c, in.SecretId)
	if aerr != nil {
		return nil, aerr
	}
	return r.describe(sec), nil
}

type smPutSecretValueInput struct {
	SecretId           string
	ClientRequestToken string
	SecretString       *string
	SecretBinary       []byte
	VersionStages      []string
}

func (r *Region) smPutSecretValue(c *call, in *smPutSecretValueInput) (any, *apiError) {
	sec, aerr := r.liveSecret(c, in.SecretId)
	if aerr != nil {
		return nil, aerr
	}
	ver, aerr := r.putSecretValue(sec, in.ClientRequestToken, secretValue{str: in.SecretString, bin: in.SecretBinary}, in.VersionStages)
	if aerr != nil {
		return nil, aerr
	}
	return smNameOutput{ARN: sec.arn, Name: sec.name, VersionId: ver.id, VersionStages: slices.Clone(ver.stages)}, nil
}

type smUpdateStageInput struct {
	SecretId            string
	VersionStage        string
	MoveToVersionId     string
	RemoveFromVersionId string
}

func (r *Region) smUpdateSecretVersionStage(c *call, in *smUpdateStageInput) (any, *apiError) {
	if in.VersionStage == "" {
		return nil, errValidation("1 validation error detected: Value null at 'versionStage' failed to satisfy constraint: Member must not be null")
	}
	sec, aerr := r.liveSecret(c, in.SecretId)
	if aerr != nil {
		return nil, aerr
	}
	if aerr := updateStage(sec, in.VersionStage, in.MoveToVersionId, in.RemoveFromVersionId); aerr != nil {
		return nil, aerr
	}
	sec.lastChanged = r.now()
	sec.prune()
	return smNameOutput{ARN: sec.arn, Name: sec.name}, nil
}

// updateStage applies UpdateSecretVersionStage's rules: a label attached
// elsewhere moves only if the caller names where it comes from.
func updateStage(sec *secret, stage, moveTo, removeFrom string) *apiError {
	holder := sec.holder(stage)
	if removeFrom != "" {
		if sec.version(removeFrom) == nil {
			return errInvalidParameter("The version %s doesn't exist.", removeFrom)
		}
		if holder == nil || holder.id != removeFrom {
			return errInvalidParameter("The staging label %s is not attached to version %s.", stage, removeFrom)
		}
	}
	if moveTo == "" {
		if removeFrom == "" {
			return errInvalidParameter("You must specify MoveToVersionId, RemoveFromVersionId or both.")
		}
		if stage == stageCurrent {
			return errInvalidParameter("You can't remove the staging label AWSCURRENT from a version without moving it to another version.")
		}
		sec.detach(stage, holder)
		return nil
	}
	target := sec.version(moveTo)
	if target == nil {
		return errInvalidParameter("The version %s doesn't exist.", moveTo)
	}
	if holder != nil && holder != target && removeFrom == "" {
		return errInvalidParameter("The parameter RemoveFromVersionId can't be empty. Staging label %s is currently attached to version %s, so you must explicitly reference that version in RemoveFromVersionId.", stage, holder.id)
	}
	sec.attach(stage, target)
	return nil
}

type smListVersionsInput struct {
	SecretId          string
	MaxResults        int
	NextToken         string
	IncludeDeprecated bool
}

type smVersionEntry struct {
	VersionId        string   `json:"VersionId"`
	VersionStages    []string `json:"VersionStages,omitempty"`
	LastAccessedDate *epoch   `json:"LastAccessedDate,omitempty"`
	CreatedDate      *epoch   `json:"CreatedDate,omitempty"`
	KmsKeyIds        []string `json:"KmsKeyIds"`
}

type smListVersionsOutput struct {
	Versions  []smVersionEntry `json:"Versions"`
	NextToken string           `json:"NextToken,omitempty"`
	ARN       string           `json:"ARN"`
	Name      string           `json:"Name"`
}

func (r *Region) smListSecretVersionIds(c *call, in *smListVersionsInput) (any, *apiError) {
	sec, aerr := r.smSecret(c, in.SecretId)
	if aerr != nil {
		return nil, aerr
	}
	var vs []*secretVersion
	for i := len(sec.versions) - 1; i >= 0; i-- { // newest first
		if v := sec.versions[i]; in.IncludeDeprecated || len(v.stages) > 0 {
			vs = append(vs, v)
		}
	}
	page, next, aerr := paginate(vs, in.NextToken, in.MaxResults, 100)
	if aerr != nil {
		return nil, aerr
	}
	out := smListVersionsOutput{Versions: []smVersionEntry{}, NextToken: next, ARN: sec.arn, Name: sec.name}
	for _, v := range page {
		out.Versions = append(out.Versions, smVersionEntry{
			VersionId: v.id, VersionStages: slices.Clone(v.stages),
			LastAccessedDate: epochPtr(v.lastAccessed), CreatedDate: epochPtr(v.created),
			KmsKeyIds: []string{"DefaultEncryptionKey"},
		})
	}
	return out, nil
}

// paginate returns one page of items from a NextToken, and the next token.
// max 0 takes the default size.
func paginate[T any](items []T, token string, max, limit int) ([]T, string, *apiError) {
	if max <= 0 || max > limit {
		max = limit
	}
	start, ok := pageStart(token, len(items))
	if !ok {
		return nil, "", errorf(400, "InvalidNextTokenException", "The NextToken value is invalid.")
	}
	end := min(start+max, len(items))
	return items[start:end], pageToken(end, len(items)), nil
}

type smListSecretsInput struct {
	Filters                []smFilter
	MaxResults             int
	NextToken              string
	IncludePlannedDeletion bool
}

type smSecretListEntry struct {
	smDescribeOutput
	SecretVersionsToStages map[string][]string `json:"SecretVersionsToStages,omitempty"`
}

type smListSecretsOutput struct {
	SecretList []smSecretListEntry `json:"SecretList"`
	NextToken  string              `json:"NextToken,omitempty"`
}

func (r *Region) smListSecrets(c *call, in *smListSecretsInput) (any, *apiError) {
	if aerr := r.authorize(c.who, c.op, "*"); aerr != nil {
		return nil, aerr
	}
	matched, aerr := r.filterSecrets(in.Filters, in.IncludePlannedDeletion)
	if aerr != nil {
		return nil, aerr
	}
	page, next, aerr := paginate(matched, in.NextToken, in.MaxResults, 100)
	if aerr != nil {
		return nil, aerr
	}
	out := smListSecretsOutput{SecretList: []smSecretListEntry{}, NextToken: next}
	for _, sec := range page {
		d := r.describe(sec)
		out.SecretList = append(out.SecretList, smSecretListEntry{smDescribeOutput: d, SecretVersionsToStages: d.VersionIdsToStages})
	}
	return out, nil
}

// filterSecrets applies ListSecrets filters (prefix matches; a value
// starting with ! negates) and sorts by name.
func (r *Region) filterSecrets(filters []smFilter, includeDeleted bool) ([]*secret, *apiError) {
	for _, f := range filters {
		switch f.Key {
		case "name", "description", "tag-key", "tag-value", "all":
		default:
			return nil, errInvalidParameter("Invalid filter key: %s.", f.Key)
		}
	}
	var out []*secret
	for _, sec := range r.secrets {
		if r.expireSecret(sec) == nil || (sec.deleted() && !includeDeleted) {
			continue
		}
		if matchFilters(sec, filters) {
			out = append(out, sec)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, nil
}

func matchFilters(sec *secret, filters []smFilter) bool {
	for _, f := range filters {
		var fields []string
		switch f.Key {
		case "name":
			fields = []string{sec.name}
		case "description":
			fields = []string{sec.description}
		case "tag-key", "tag-value", "all":
			if f.Key == "all" {
				fields = append(fields, sec.name, sec.description)
			}
			for _, t := range sec.tags {
				if f.Key != "tag-value" {
					fields = append(fields, t.Key)
				}
				if f.Key != "tag-key" {
					fields = append(fields, t.Value)
				}
			}
		}
		if !matchFilterValues(fields, f.Values) {
			return false
		}
	}
	return true
}

func matchFilterValues(fields, values []string) bool {
	for _, v := range values {
		neg := strings.HasPrefix(v, "!")
		v = strings.TrimPrefix(v, "!")
		hit := slices.ContainsFunc(fields, func(f string) bool { return strings.HasPrefix(f, v) })
		if hit != neg {
			return true
		}
	}
	return false
}

type smDeleteSecretInput struct {
	SecretId                   string
	RecoveryWindowInDays       *int64
	ForceDeleteWithoutRecovery bool
}

func (r *Region) smDeleteSecret(c *call, in *smDeleteSecretInput) (any, *apiError) {
	if in.ForceDeleteWithoutRecovery && in.RecoveryWindowInDays != nil {
		return nil, errInvalidParameter("You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays.")
	}
	days := int64(30)
	if in.RecoveryWindowInDays != nil {
		days = *in.RecoveryWindowInDays
		if days < 7 || days > 30 {
			return nil, errInvalidParameter("The RecoveryWindowInDays value must be between 7 and 30 days (inclusive).")
		}
	}
	sec, aerr := r.smSecret(c, in.SecretId)
	if aerr != nil {
		return nil, aerr
	}
	now := r.now()
	if in.ForceDeleteWithoutRecovery {
		delete(r.secrets, sec.name)
		return smNameOutput{ARN: sec.arn, Name: sec.name, DeletionDate: epochPtr(now)}, nil
	}
	if sec.deleted() {
		return nil, errInvalidRequest(msgSecretDeleted)
	}
	sec.deletedAt = now
	sec.deletionDate = now.Add(time.Duration(days) * 24 * time.Hour)
	return smNameOutput{ARN: sec.arn, Name: sec.name, DeletionDate: epochPtr(sec.deletionDate)}, nil
}

func (r *Region) smRestoreSecret(c *call, in *smSecretIDInput) (any, *apiError) {
	sec, aerr := r.smSecret(c, in.SecretId)
	if aerr != nil {
		return nil, aerr
	}
	sec.deletedAt, sec.deletionDate = time.Time{}, time.Time{}
	return smNameOutput{ARN: sec.arn, Name: sec.name}, nil
}
