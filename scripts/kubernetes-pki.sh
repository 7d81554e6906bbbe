#!/usr/bin/env bash
# A throwaway cluster's PKI: a CA, the apiserver's serving certificate, client
# certificates (admin, scheduler, controller-manager, the apiserver's kubelet
# client, and Seam's controller), the service-account key pair, and a
# kubeconfig per client, written by hand (Debian's kubectl 1.20 crashes in
# `config set-credentials`). With node names after the URL, also a kubelet
# credential per node (system:node:<name> in system:nodes, what the Node
# authorizer and NodeRestriction expect): node-<name>.kubeconfig.
#
#   bash scripts/kubernetes-pki.sh DIR APISERVER_URL [NODE...]
set -euo pipefail
DIR=$1
URL=$2
shift 2
NODES=("$@")
HOST=${URL#https://}
HOST=${HOST%:*}
mkdir -p "$DIR/pki"
cd "$DIR/pki"
openssl genrsa -out ca.key 2048 2>/dev/null
openssl req -x509 -new -nodes -key ca.key -subj "/CN=seam-lab-ca" -days 30 -out ca.crt
cert() { # name CN O [SANs]
  local n=$1 cn=$2 o=$3 san=${4:-} subj
  openssl genrsa -out "$n.key" 2048 2>/dev/null
  subj="/CN=$cn"
  [ -n "$o" ] && subj="/O=$o$subj"
  openssl req -new -key "$n.key" -subj "$subj" -out "$n.csr"
  {
    echo "basicConstraints=CA:FALSE"
    echo "keyUsage=digitalSignature,keyEncipherment"
    if [ -n "$san" ]; then echo "extendedKeyUsage=serverAuth,clientAuth"; echo "subjectAltName=$san"; else echo "extendedKeyUsage=clientAuth"; fi
  } > "$n.ext"
  openssl x509 -req -in "$n.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 -extfile "$n.ext" -out "$n.crt" 2>/dev/null
  rm -f "$n.csr" "$n.ext"
}
extra=""
[[ $HOST =~ ^[0-9.]+$ ]] && [ "$HOST" != 127.0.0.1 ] && extra="IP:$HOST,"
cert apiserver kube-apiserver "" "${extra}IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
cert admin admin system:masters
cert apiserver-kubelet-client kube-apiserver-kubelet-client system:masters
cert scheduler system:kube-scheduler ""
cert controller-manager system:kube-controller-manager ""
# Seam's controller: a cluster-wide reader and writer of namespaces, pods, services, policies and leases.
cert seam seam-controller system:masters
for n in "${NODES[@]}"; do cert "node-$n" "system:node:$n" system:nodes; done
openssl genrsa -out sa.key 2048 2>/dev/null
openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
b64() { base64 -w0 "$1"; }
for u in admin scheduler controller-manager seam "${NODES[@]/#/node-}"; do
  cat > "$DIR/$u.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: seam-lab
  cluster:
    server: $URL
    certificate-authority-data: $(b64 ca.crt)
users:
- name: $u
  user:
    client-certificate-data: $(b64 "$u.crt")
    client-key-data: $(b64 "$u.key")
contexts:
- name: seam-lab
  context: {cluster: seam-lab, user: $u}
current-context: seam-lab
EOF
done
