package rules

// volumeTypes: volumes use only the types Pod Security Standard restricted
// allows: configMap, csi, downwardAPI, emptyDir, ephemeral, image,
// persistentVolumeClaim, projected, secret. So no hostPath (Docker's bind
// mounts) and no in-tree network volumes. A volume with no source is an
// emptyDir (the API server's default). Field: spec.volumes[*]. No fix.
// Image volumes (volumes[*].image, GA in 1.36) stay allowed, as PSA
// restricted allows them: they are read-only and hold no host path; the
// image rules (imageTag) judge the image they pull.

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"podguard.dev/podguard/policies/api/v1alpha1"
	"podguard.dev/podguard/policies/podspec"
)

func init() {
	Register(Definition{
		Reads: podspec.Fields{"volumes"},
		ID:    "volumeTypes", Order: 110, Action: v1alpha1.ActionEnforce,
		Checklist: ItemHostAccess,
		Doc: `Only configMap, csi, downwardAPI, emptyDir, ephemeral, image,
persistentVolumeClaim, projected and secret volumes: no hostPath, no bind
mounts.`,
		PSS:    []PSSCheck{{ID: "hostPathVolumes", Level: Baseline}, {ID: "restrictedVolumes", Level: Restricted}},
		CIS:    []string{"5.2.12"},
		New:    newVolumeTypes,
		Native: nativeVolumeTypes,
	})
}

// volumeType names the source of a volume the restricted level forbids, or
// returns "" for an allowed one.
func volumeType(v *corev1.Volume) string {
	s := v.VolumeSource
	switch {
	case s.ConfigMap != nil, s.CSI != nil, s.DownwardAPI != nil, s.EmptyDir != nil, s.Ephemeral != nil,
		s.Image != nil, s.PersistentVolumeClaim != nil, s.Projected != nil, s.Secret != nil:
		return ""
	case s.HostPath != nil:
		return "hostPath"
	case s.GCEPersistentDisk != nil:
		return "gcePersistentDisk"
	case s.AWSElasticBlockStore != nil:
		return "awsElasticBlockStore"
	case s.GitRepo != nil:
		return "gitRepo"
	case s.NFS != nil:
		return "nfs"
	case s.ISCSI != nil:
		return "iscsi"
	case s.Glusterfs != nil:
		return "glusterfs"
	case s.RBD != nil:
		return "rbd"
	case s.FlexVolume != nil:
		return "flexVolume"
	case s.Cinder != nil:
		return "cinder"
	case s.CephFS != nil:
		return "cephfs"
	case s.Flocker != nil:
		return "flocker"
	case s.FC != nil:
		return "fc"
	case s.AzureFile != nil:
		return "azureFile"
	case s.VsphereVolume != nil:
		return "vsphereVolume"
	case s.Quobyte != nil:
		return "quobyte"
	case s.AzureDisk != nil:
		return "azureDisk"
	case s.PhotonPersistentDisk != nil:
		return "photonPersistentDisk"
	case s.PortworxVolume != nil:
		return "portworxVolume"
	case s.ScaleIO != nil:
		return "scaleIO"
	case s.StorageOS != nil:
		return "storageos"
	}
	// No source at all: the API server makes it an emptyDir.
	return ""
}

func newVolumeTypes(*v1alpha1.Policy) Rule {
	return Rule{
		ID:      "volumeTypes",
		Summary: "volumes are configMap, csi, downwardAPI, emptyDir, ephemeral, image, persistentVolumeClaim, projected or secret",
		Check: func(t *podspec.Target) []Finding {
			if t.ContainersOnly {
				return nil
			}
			var out []Finding
			for i := range t.Spec.Volumes {
				v := &t.Spec.Volumes[i]
				typ := volumeType(v)
				if typ == "" {
					continue
				}
				p := t.SpecPath.Child("volumes").Index(i).Child(typ)
				fix := "use a persistentVolumeClaim, configMap, secret or emptyDir volume instead"
				if typ == "hostPath" {
					fix = "remove the hostPath volume; use a persistentVolumeClaim, or emptyDir for scratch space"
				}
				out = append(out, forbidden(p, fmt.Sprintf("volume %q uses the %s volume type, which the restricted level forbids", v.Name, typ), fix))
			}
			return out
		},
	}
}

func nativeVolumeTypes(*v1alpha1.Policy, NativeMode) Native {
	var none []string
	for _, f := range forbiddenVolumeFields {
		none = append(none, "!has(v."+f+")")
	}
	return Native{
		Pod: fmt.Sprintf("variables.spec.?volumes.orValue([]).all(v, %s)", strings.Join(none, " && ")),
		PodMessage: fmt.Sprintf("%s + %s + %s", celString("a volume uses a type the restricted level forbids (hostPath, nfs...); fix: use persistentVolumeClaim, configMap, secret or emptyDir volumes in "),
			specField("volumes"), celString("")),
	}
}

// forbiddenVolumeFields are the volume sources volumeType names, in its order.
var forbiddenVolumeFields = []string{"hostPath", "gcePersistentDisk", "awsElasticBlockStore", "gitRepo", "nfs", "iscsi", "glusterfs", "rbd",
	"flexVolume", "cinder", "cephfs", "flocker", "fc", "azureFile", "vsphereVolume", "quobyte", "azureDisk", "photonPersistentDisk",
	"portworxVolume", "scaleIO", "storageos"}
