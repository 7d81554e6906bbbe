// Exactly the API extensions this server implements. Nova, Kuryr and the
// OpenStack SDK probe these aliases to decide what to send; listing one that
// is not implemented would make them send what we then refuse.
export interface Extension {
  readonly alias: string;
  readonly name: string;
  readonly description: string;
}

const ext = (alias: string, name: string, description: string): Extension => ({ alias, name, description });

export const EXTENSIONS: readonly Extension[] = [
  ext("agent", "agent", "The agent management extension."),
  ext("allowed-address-pairs", "Allowed Address Pairs", "Provides allowed address pairs"),
  ext("binding", "Port Binding", "Expose port bindings of a virtual port to external application"),
  ext("dhcp_agent_scheduler", "DHCP Agent Scheduler", "Schedule networks among dhcp agents"),
  ext("default-subnetpools", "Default Subnetpools", "Provides ability to mark and use a subnetpool as the default."),
  ext("dns-integration", "DNS Integration", "Provides integration with DNS."),
  ext("dvr", "Distributed Virtual Router", "Enables configuration of Distributed Virtual Routers."),
  ext("empty-string-filtering", "Empty String Filtering Extension", "Allow filtering by attributes with empty string value"),
  ext("external-net", "Neutron external network", "Adds external network attribute to network resource."),
  ext("ext-gw-mode", "Neutron L3 Configurable external gateway mode", "Extension of the router abstraction for specifying whether SNAT should occur on the external gateway"),
  ext("extra_dhcp_opt", "Neutron Extra DHCP options", "Extra options configuration for DHCP. For example PXE boot options to DHCP clients can be specified (e.g. tftp-server, server-ip-address, bootfile-name)"),
  ext("extraroute", "Neutron Extra Route", "Extra routes configuration for L3 router"),
  ext("filter-validation", "Filter parameters validation", "Provides validation on filter parameters."),
  ext("ip-substring-filtering", "IP address substring filtering", "Provides IP address substring filtering when listing ports"),
  ext("net-mtu", "Network MTU", "Provides MTU attribute for a network resource."),
  ext("net-mtu-writable", "Network MTU (writable)", "Provides a writable MTU attribute for a network resource."),
  ext("network_availability_zone", "Network Availability Zone", "Availability zone support for network."),
  ext("pagination", "Pagination support", "Extension that indicates that pagination is enabled."),
  ext("port-security", "Port Security", "Provides port security"),
  ext("project-id", "project_id field enabled", "Extension that indicates that project_id field is enabled."),
  ext("provider", "Provider Network", "Expose mapping of virtual networks to physical networks"),
  ext("quotas", "Quota management support", "Expose functions for quotas management per project"),
  ext("quota_details", "Quota details management support", "Expose functions for quotas usage statistics per project"),
  ext("rbac-policies", "RBAC Policies", "Allows creation and modification of policies that control tenant access to resources."),
  ext("rbac-security-groups", "RBAC Security Groups", "Add security_group type to RBAC"),
  ext("revision-if-match", "If-Match constraints based on revision_number", "Extension indicating that If-Match based on revision_number is supported."),
  ext("router", "Neutron L3 Router", "Router abstraction for basic L3 forwarding between L2 Neutron networks and access to external networks via a NAT gateway."),
  ext("security-group", "security-group", "The security groups extension."),
  ext("security-groups-shared-filtering", "Security group filtering on the shared field", "Support filtering security groups on the shared field"),
  ext("sorting", "Sorting support", "Extension that indicates that sorting is enabled."),
  ext("standard-attr-description", "standard-attr-description", "Extension to add descriptions to standard attributes"),
  ext("standard-attr-revisions", "Resource revision numbers", "This extension will display the revision number of neutron resources."),
  ext("standard-attr-tag", "Tag support for resources with standard attribute: subnet, trunk, router, network, policy, subnetpool, port, security_group, floatingip", "Enables to set tag on resources with standard attribute."),
  ext("standard-attr-timestamp", "Resource timestamps", "Adds created_at and updated_at fields to all Neutron resources that have Neutron standard attributes."),
  ext("stateful-security-group", "Stateful security group", "Indicates if the security group is stateful or not"),
  ext("subnet_allocation", "Subnet Allocation", "Enables allocation of subnets from a subnet pool"),
  ext("trunk", "Trunk Extension", "Provides support for trunk ports"),
  ext("trunk-details", "Trunk port details", "Expose trunk port details"),
];

export function extensionView(e: Extension) {
  return { alias: e.alias, name: e.name, description: e.description, updated: "2026-01-01T00:00:00-00:00", links: [] };
}
