package ipam

// Pool validates c and returns its parsed form. Errors wrap ErrInvalid and
// name the JSON path and value, e.g. `ipam.ranges[0][0].rangeStart "10.0.0.300": not an IP`.
func (c *Config) Pool() (*Pool, error) { return nil, errTODO }
