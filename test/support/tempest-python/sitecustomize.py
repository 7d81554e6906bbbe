# Loaded (through PYTHONPATH) by the Tempest processes that test/support/tempest.ts
# starts, and by nothing else.
#
# Debian's tempest 33 sleeps 10 s before every subnet delete, for Neutron's
# asynchronous port teardown (its comment: "it takes time to teardown some
# ports"). Seam deletes a subnet's ports in the same transaction as the subnet,
# so the sleep only slows the run (NetworksTest: 2 minutes instead of 7 s). The call
# is otherwise Tempest's own: the same URL, the same expected 204.
try:
    from tempest.lib.services.network import subnets_client as _subnets_client

    def _delete_subnet(self, subnet_id):
        return self.delete_resource('/subnets/%s' % subnet_id)

    _subnets_client.SubnetsClient.delete_subnet = _delete_subnet
except ImportError:
    pass
